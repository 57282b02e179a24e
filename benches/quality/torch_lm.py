# PyTorch reference for `examples/char_lm.rs` on a text file: the same models, data layout,
# optimizer, schedule and validation estimate, so the validation losses can be compared on the same
# machine. Not a test fixture: sampling and initialisation draw from PyTorch's generator, so the
# numbers agree in distribution, not bit for bit.
#
#   .venv/bin/python benches/torch_char_lm.py ../shared/data/tinyshakespeare.txt gpt 2000 [threads]
#
# gpt: nanoGPT's `train_shakespeare_char` at its CPU settings (block 64, batch 12, 4 layers of 4
# heads, 128 wide, no dropout, no biases, exact GELU, tied embeddings, AdamW betas (0.9, 0.99),
# weight decay 0.1 on matrices, 100 warmup steps, cosine from 1e-3 to 1e-4, clipping at 1.0,
# validation over 20 random batches).
# lstm | gru | rnn: PyTorch's word_language_model `RNNModel` (embedding 128, one layer of 256, no
# dropout, untied) trained with truncated BPTT on 32 parallel streams of 64 characters, AdamW lr
# 3e-3 with weight decay 0.01, warmup min(steps/10, 50) then cosine to 1e-4, clipping at 1.0;
# validation: the first 20 batches of 8 streams, the state carried along.
import math, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

path, kind, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
torch.manual_seed(1337)

text = open(path, encoding="utf-8").read()
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([index[c] for c in text], dtype=torch.long)
n_valid = round(len(ids) * 0.1)
train_ids, valid_ids = ids[: len(ids) - n_valid], ids[len(ids) - n_valid :]
vocab = len(chars)


def lr_at(step, base, warmup, total, floor):
    # nanoGPT's get_lr, stepped once per optimizer step.
    if step < warmup:
        return base * (step + 1) / (warmup + 1)
    if step > total:
        return floor
    ratio = (step - warmup) / (total - warmup)
    return floor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (base - floor)


class Block(nn.Module):
    def __init__(s, d, h, layers):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
        s.qkv, s.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        s.fc, s.out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)
        s.h = h
        for w in (s.qkv.weight, s.fc.weight):
            nn.init.normal_(w, 0.0, 0.02)
        for w in (s.proj.weight, s.out.weight):
            nn.init.normal_(w, 0.0, 0.02 / math.sqrt(2 * layers))

    def forward(s, x):
        b, t, c = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(c, dim=2)
        q, k, v = [z.view(b, t, s.h, c // s.h).transpose(1, 2) for z in (q, k, v)]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + s.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + s.out(F.gelu(s.fc(s.ln2(x))))


class Gpt(nn.Module):
    def __init__(s, v, t, layers, heads, d):
        super().__init__()
        s.tok, s.pos = nn.Embedding(v, d), nn.Embedding(t, d)
        nn.init.normal_(s.tok.weight, 0.0, 0.02)
        nn.init.normal_(s.pos.weight, 0.0, 0.02)
        s.blocks = nn.Sequential(*[Block(d, heads, layers) for _ in range(layers)])
        s.ln = nn.LayerNorm(d, bias=False)

    def forward(s, idx):
        x = s.tok(idx) + s.pos(torch.arange(idx.shape[1]))
        return s.ln(s.blocks(x)) @ s.tok.weight.t()


class RnnLm(nn.Module):
    def __init__(s, cell, v, e, h):
        super().__init__()
        s.encoder = nn.Embedding(v, e)
        s.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](e, h, batch_first=True)
        s.decoder = nn.Linear(h, v)
        nn.init.uniform_(s.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(s.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(s.decoder.bias)

    def forward(s, idx, state):
        out, state = s.rnn(s.encoder(idx), state)
        return s.decoder(out), state


def streams(data, rows):
    # LmStreams: `rows` contiguous streams, read left to right in windows of 64.
    per = (len(data) - 1) // rows
    return data[: rows * per + 1], per


def stream_batch(data, rows, per, i, bptt=64):
    start = i * bptt
    end = min(start + bptt, per)
    x = torch.stack([data[r * per + start : r * per + end] for r in range(rows)])
    y = torch.stack([data[r * per + start + 1 : r * per + end + 1] for r in range(rows)])
    return x, y


def detach(state):
    return tuple(z.detach() for z in state) if isinstance(state, tuple) else state.detach()


t0 = time.time()
if kind == "gpt":
    model = Gpt(vocab, 64, 4, 4, 128)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.99), eps=1e-8,
    )
    warmup = min(max(steps // 10, 1), 100)

    def window(data, batch=12, block=64):
        starts = torch.randint(len(data) - block - 1, (batch,))
        x = torch.stack([data[s : s + block] for s in starts])
        y = torch.stack([data[s + 1 : s + block + 1] for s in starts])
        return x, y

    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, 1e-3, warmup, steps, 1e-4)
        x, y = window(train_ids)
        loss = F.cross_entropy(model(x).view(-1, vocab), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    with torch.no_grad():
        losses = []
        for _ in range(20):
            x, y = window(valid_ids)
            losses.append(F.cross_entropy(model(x).view(-1, vocab), y.view(-1)).item())
    valid = sum(losses) / len(losses)
else:
    model = RnnLm(kind, vocab, 128, 256)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    warmup = min(max(steps // 10, 1), 50)
    data, per = streams(train_ids, 32)
    batches = math.ceil(per / 64)
    state, i = None, 0
    for step in range(steps):
        if i == batches:  # a new epoch: the streams restart, and so does the state
            state, i = None, 0
        for g in opt.param_groups:
            g["lr"] = lr_at(step, 3e-3, warmup, steps, 1e-4)
        x, y = stream_batch(data, 32, per, i)
        logits, state = model(x, state)
        state = detach(state)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        i += 1
    model.eval()
    vdata, vper = streams(valid_ids, 8)
    state, total, count = None, 0.0, 0
    with torch.no_grad():
        for j in range(min(20, math.ceil(vper / 64))):
            x, y = stream_batch(vdata, 8, vper, j)
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    valid = total / count
elapsed = time.time() - t0
print(f"torch {torch.__version__} {kind} {steps} steps: validation loss {valid:.4f} nats/char "
      f"({valid / math.log(2):.3f} bits/char), {elapsed:.1f} s")
