"""PyTorch reference for `benches/ctc.rs`: CPU `ctc_loss` (reduction mean) forward and backward,
the gradient of the logits through `log_softmax`, on 16 utterances × 200 frames × 30 classes
with targets of 20 to 50 labels, float32, the threads given.

Run: .venv/bin/python benches/torch_ctc.py 2     (CPU threads)
     python3 benches/torch_ctc.py cuda            (a CUDA GPU)
"""
import sys
import time

import torch
import torch.nn.functional as F

torch.manual_seed(3)
arg = sys.argv[1] if len(sys.argv) > 1 else "2"
dev = torch.device("cuda" if arg == "cuda" else "cpu")
if dev.type == "cpu":
    torch.set_num_threads(int(arg))
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
N, T, C = 16, 200, 30
lengths = torch.randint(20, 51, (N,))
targets = torch.randint(1, C, (N, int(lengths.max())))
input_lengths = torch.tensor([T - 4 * (i % 5) for i in range(N)])
logits = torch.randn(N, T, C)
# On CUDA: the inputs on the GPU (int64 padded targets: the native CUDA kernel, as burn's layout).
targets, input_lengths, lengths, logits = (t.to(dev) for t in (targets, input_lengths, lengths, logits))


def step():
    x = logits.clone().requires_grad_()
    loss = F.ctc_loss(F.log_softmax(x, 2).transpose(0, 1), targets, input_lengths, lengths)
    loss.backward()
    return x.grad


for _ in range(3):
    step()
n = 20
sync()
t0 = time.perf_counter()
for _ in range(n):
    step()
sync()
print(f"torch {dev.type} ctc_loss forward+backward N={N} T={T} C={C}: {(time.perf_counter() - t0) / n * 1e3:.2f} ms")
