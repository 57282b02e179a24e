"""PyTorch side of benches/peak_memory.rs: training steps of one recurrent layer at one shape, for
measuring peak resident memory with /usr/bin/time -v.

Usage: /usr/bin/time -v python benches/torch_peak_memory.py lstm 32 64 256 512 2 5
"""
import sys

import torch

torch.set_num_threads(2)
kind, (b, t, i, h, layers, steps) = sys.argv[1], map(int, sys.argv[2:8])
cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
net = cls(i, h, num_layers=layers, batch_first=True)
x = torch.randn(b, t, i)
for _ in range(steps):
    net.zero_grad(set_to_none=True)
    out, _ = net(x)
    out.pow(2).mean().backward()
