"""PyTorch reference for `benches/ctc.rs`: CPU `ctc_loss` (reduction mean) forward and backward,
the gradient of the logits through `log_softmax`, on 16 utterances × 200 frames × 30 classes
with targets of 20 to 50 labels, float32, the threads given.

Run: .venv/bin/python benches/torch_ctc.py 2
"""
import sys
import time

import torch
import torch.nn.functional as F

torch.manual_seed(3)
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
N, T, C = 16, 200, 30
lengths = torch.randint(20, 51, (N,))
targets = torch.randint(1, C, (N, int(lengths.max())))
input_lengths = torch.tensor([T - 4 * (i % 5) for i in range(N)])
logits = torch.randn(N, T, C)


def step():
    x = logits.clone().requires_grad_()
    loss = F.ctc_loss(F.log_softmax(x, 2).transpose(0, 1), targets, input_lengths, lengths)
    loss.backward()
    return x.grad


for _ in range(3):
    step()
n = 20
t0 = time.perf_counter()
for _ in range(n):
    step()
print(f"torch ctc_loss forward+backward N={N} T={T} C={C}: {(time.perf_counter() - t0) / n * 1e3:.2f} ms")
