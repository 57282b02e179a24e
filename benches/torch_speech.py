"""PyTorch reference for `benches/speech.rs`: the speech example's network, one training step
(forward, CTC loss with reduction mean, backward, AdamW step) on 16 utterances of 200 to 110
frames of 40 features, 24 classes, targets of 12 to 24 labels, float32:

  two Conv2d(3×3, stride 2, padding 1, 32 channels) with ReLU, a 2-layer bidirectional LSTM of
  128 per direction over the real lengths (pack_padded_sequence), Linear, log_softmax, ctc_loss.

Run: .venv/bin/python benches/torch_speech.py 2     (CPU threads)
     python3 benches/torch_speech.py cuda            (a CUDA GPU, cuDNN, TF32 off)
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

arg = sys.argv[1] if len(sys.argv) > 1 else "2"
dev = torch.device("cuda" if arg == "cuda" else "cpu")
if dev.type == "cpu":
    torch.set_num_threads(int(arg))
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
torch.manual_seed(5)
N, T, FEAT, C, H = 16, 200, 40, 24, 128


class Speech(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)
        s.conv2 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        s.rnn = nn.LSTM(32 * FEAT // 4, H, num_layers=2, bidirectional=True, batch_first=True)
        s.out = nn.Linear(2 * H, C)

    def forward(s, x, lengths):
        n, t, f = x.shape
        x = F.relu(s.conv2(F.relu(s.conv1(x.reshape(n, 1, t, f)))))
        _, c, t2, f2 = x.shape
        x = x.transpose(1, 2).reshape(n, t2, c * f2)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = s.rnn(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=t2)
        return F.log_softmax(s.out(h), 2)


lengths = torch.tensor([T - 6 * i for i in range(N)])
out_lengths = (lengths + 1) // 2
out_lengths = (out_lengths + 1) // 2
target_lengths = torch.randint(12, 25, (N,))
targets = torch.randint(1, C, (N, int(target_lengths.max())))
x = torch.randn(N, T, FEAT)
model = Speech().to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x, targets, target_lengths, out_lengths_dev = (t.to(dev) for t in (x, targets, target_lengths, out_lengths))


def step():
    opt.zero_grad(set_to_none=True)
    lp = model(x, out_lengths)
    loss = F.ctc_loss(lp.transpose(0, 1), targets, out_lengths_dev, target_lengths)
    loss.backward()
    opt.step()


for _ in range(3):
    step()
n = 20 if dev.type == "cuda" else 10
sync()
t0 = time.perf_counter()
for _ in range(n):
    step()
sync()
print(f"torch {dev.type} speech train step N={N} T={T} F={FEAT}: {(time.perf_counter() - t0) / n * 1e3:.2f} ms")
