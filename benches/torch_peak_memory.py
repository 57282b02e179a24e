"""PyTorch side of benches/peak_memory.rs: training steps of one recurrent layer, or of a GPT, at
one shape, for measuring peak resident memory with /usr/bin/time -v.

Usage: /usr/bin/time -v python benches/torch_peak_memory.py lstm 32 64 256 512 2 5
       /usr/bin/time -v python benches/torch_peak_memory.py gpt 4 1024 4 4 128 3
(gpt: batch, block, layers, heads, width, steps; nanoGPT's model as ../shared/bench/torch_gpt.py
builds it, with F.scaled_dot_product_attention, exact GELU, tied head, AdamW.)
"""
import sys

import torch

torch.set_num_threads(2)
kind, (b, t, i, h, layers, steps) = sys.argv[1], map(int, sys.argv[2:8])
if kind == "gpt":
    import torch.nn as nn
    import torch.nn.functional as F

    (block, n_layer, n_head, width), V = (t, i, h, layers), 65

    class Block(nn.Module):
        def __init__(s):
            super().__init__()
            s.ln1, s.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            s.qkv, s.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            s.fc, s.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

        def forward(s, x):
            B, T, C = x.shape
            q, k, v = s.qkv(s.ln1(x)).split(C, dim=2)
            q, k, v = [z.view(B, T, n_head, C // n_head).transpose(1, 2) for z in (q, k, v)]
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + s.proj(y.transpose(1, 2).reshape(B, T, C))
            return x + s.out(F.gelu(s.fc(s.ln2(x))))

    tok, pos = nn.Embedding(V, width), nn.Embedding(block, width)
    blocks, ln = nn.Sequential(*[Block() for _ in range(n_layer)]), nn.LayerNorm(width)
    params = [*tok.parameters(), *pos.parameters(), *blocks.parameters(), *ln.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3)
    x, y = torch.randint(0, V, (b, block)), torch.randint(0, V, (b * block,))
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        hidden = ln(blocks(tok(x) + pos(torch.arange(block))))
        F.cross_entropy((hidden @ tok.weight.T).view(-1, V), y).backward()
        opt.step()
    sys.exit(0)
cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
net = cls(i, h, num_layers=layers, batch_first=True)
x = torch.randn(b, t, i)
for _ in range(steps):
    net.zero_grad(set_to_none=True)
    out, _ = net(x)
    out.pow(2).mean().backward()
