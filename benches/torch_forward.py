"""PyTorch CPU reference for the forward-only recurrent benches (companion of
../shared/bench/torch_rnn.py, which times training steps): torch.nn.LSTM / GRU / RNN under
torch.no_grad() at the shapes of benches/recurrent.rs.

Usage: python benches/torch_forward.py [threads]   (default 2 threads)
"""
import sys
import time

import torch

torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)

SHAPES = [(8, 32, 64, 128, 1), (32, 64, 128, 256, 1), (32, 64, 256, 512, 2)]

for kind in (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN):
    for b, t, i, h, layers in SHAPES:
        net = kind(i, h, num_layers=layers, batch_first=True)
        x = torch.randn(b, t, i)
        with torch.no_grad():
            for _ in range(3):
                net(x)
            n = 20
            start = time.perf_counter()
            for _ in range(n):
                net(x)
            dt = (time.perf_counter() - start) / n
        print(f"torch forward {kind.__name__} B={b} T={t} I={i} H={h} L={layers}: {dt * 1e3:.2f} ms")

# Decoding: 64 single-token steps of one sequence through nn.LSTM, the state carried between calls
# (benches/recurrent.rs's `decode` group).
for b, t, i, h, layers in SHAPES:
    net = torch.nn.LSTM(i, h, num_layers=layers, batch_first=True)
    steps = torch.randn(1, 64, i).split(1, dim=1)
    with torch.no_grad():
        def run():
            state = None
            for x in steps:
                _, state = net(x, state)
        for _ in range(3):
            run()
        n = 20
        start = time.perf_counter()
        for _ in range(n):
            run()
        dt = (time.perf_counter() - start) / n
    print(f"torch decode LSTM 64 steps I={i} H={h} L={layers}: {dt * 1e3:.2f} ms")
