# PyTorch side of the language-model quality recipes (`benches/quality/README.md`): the models,
# data layout, optimizer, schedule and validation estimate of `examples/char_lm.rs` (characters)
# and of `benches/quality/word_lm.rs` (`--words`), so that the validation losses at equal steps can
# be compared on the same machine. Sampling and initialisation draw from PyTorch's generator: the
# numbers agree in distribution over seeds, not bit for bit.
#
#   .venv/bin/python benches/quality/torch_lm.py CORPUS --model lstm --steps 1000 \
#       --layers 2 --hidden 128 --embed 128 --batch-size 50 --block-size 50 --seed 1 \
#       --init torch-modules --threads 1
#   .venv/bin/python benches/quality/torch_lm.py CORPUS --words --steps 1000 --layers 2 \
#       --hidden 128 --embed 128 --batch-size 20 --block-size 35 --seed 1 --threads 1
#
# gpt: nanoGPT's `train_shakespeare_char` at its CPU settings (block 64, batch 12, 4 layers of 4
# heads, 128 wide, no dropout, no biases, exact GELU, tied embeddings, AdamW betas (0.9, 0.99),
# weight decay 0.1 on matrices, warmup min(steps/10, 100), cosine from 1e-3 to 1e-4, clipping at
# 1.0, validation over 20 random windows).
# lstm | gru | rnn: PyTorch's word_language_model `RNNModel` (no dropout, untied) trained with
# truncated BPTT on parallel streams, AdamW lr 3e-3 with weight decay 0.01, warmup
# min(steps/10, 50) then cosine to 1e-4, clipping at 1.0; validation: the first 20 batches of
# batch/4 streams, the state carried along.
# --words: the tokens are whitespace-separated lowercased words, the vocabulary the training
# split's words seen twice or more after <pad> <unk> <bos> <eos> (ember-lm's WordTokenizer), the
# others <unk>; the last 10% of the words is held out.
#
# --init: torch-modules (each nn module's own initialisation; for gpt, nanoGPT's modules without
# its _init_weights, the tied weight being the head's), word-language-model (embedding and decoder
# U(-0.1, 0.1), decoder bias 0), gpt2 (nanoGPT's _init_weights). The last line printed is JSON.
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("corpus")
p.add_argument("--model", default="lstm", choices=["lstm", "gru", "rnn", "gpt"])
p.add_argument("--steps", type=int)
p.add_argument("--seed", type=int, default=1337)
p.add_argument("--init", choices=["torch-modules", "word-language-model", "gpt2"])
p.add_argument("--lr", type=float)
p.add_argument("--batch-size", type=int)
p.add_argument("--block-size", type=int, default=64)
p.add_argument("--hidden", type=int)
p.add_argument("--layers", type=int)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--embed", type=int, default=128)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--words", action="store_true")
a = p.parse_args()
gpt = a.model == "gpt"
steps = a.steps or (1000 if gpt else 600)
init = a.init or ("gpt2" if gpt else "torch-modules")
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

text = open(a.corpus, encoding="utf-8").read()
if a.words:
    words = text.split()
    n_valid = round(len(words) * 0.1)
    train_words, valid_words = words[: len(words) - n_valid], words[len(words) - n_valid :]
    counts = {}
    for w in train_words:
        counts[w.lower()] = counts.get(w.lower(), 0) + 1
    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    kept = sorted((w for w, c in counts.items() if c >= 2 and w not in specials), key=lambda w: (-counts[w], w))
    index = {w: i for i, w in enumerate(specials + kept)}
    encode = lambda ws: torch.tensor([index.get(w.lower(), 1) for w in ws], dtype=torch.long)
    train_ids, valid_ids = encode(train_words), encode(valid_words)
    vocab = len(index)
else:
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    n_valid = round(len(ids) * 0.1)
    train_ids, valid_ids = ids[: len(ids) - n_valid], ids[len(ids) - n_valid :]
    vocab = len(chars)


def lr_at(step, base, warmup, total, floor):
    # LrSchedule::warmup_cosine (nanoGPT's get_lr), stepped once per optimizer step.
    if step < warmup:
        return base * (step + 1) / (warmup + 1)
    if step > total:
        return floor
    ratio = (step - warmup) / (total - warmup)
    return floor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (base - floor)


class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
        s.qkv, s.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        s.fc, s.out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)
        s.h = h

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
        s.pos = nn.Embedding(t, d)
        s.blocks = nn.Sequential(*[Block(d, heads) for _ in range(layers)])
        s.ln = nn.LayerNorm(d, bias=False)
        # nanoGPT ties `wte.weight = lm_head.weight`: the shared tensor is the Linear's.
        s.head = nn.Linear(d, v, bias=False)
        if init == "gpt2":
            for w in [s.head.weight, s.pos.weight] + [
                w for b in s.blocks for w in (b.qkv.weight, b.fc.weight)
            ]:
                nn.init.normal_(w, 0.0, 0.02)
            for b in s.blocks:
                for w in (b.proj.weight, b.out.weight):
                    nn.init.normal_(w, 0.0, 0.02 / math.sqrt(2 * layers))

    def forward(s, idx):
        x = F.embedding(idx, s.head.weight) + s.pos(torch.arange(idx.shape[1]))
        return s.head(s.ln(s.blocks(x)))


class RnnLm(nn.Module):
    def __init__(s, cell, v, e, h, layers):
        super().__init__()
        s.encoder = nn.Embedding(v, e)
        s.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](e, h, layers, batch_first=True)
        s.decoder = nn.Linear(h, v)
        if init == "word-language-model":
            nn.init.uniform_(s.encoder.weight, -0.1, 0.1)
            nn.init.uniform_(s.decoder.weight, -0.1, 0.1)
            nn.init.zeros_(s.decoder.bias)

    def forward(s, idx, state):
        out, state = s.rnn(s.encoder(idx), state)
        return s.decoder(out), state


def streams(data, rows):
    # LmStreams: `rows` contiguous streams, read left to right in windows of block_size.
    per = (len(data) - 1) // rows
    return data[: rows * per + 1], per


def stream_batch(data, rows, per, i, bptt):
    start = i * bptt
    end = min(start + bptt, per)
    x = torch.stack([data[r * per + start : r * per + end] for r in range(rows)])
    y = torch.stack([data[r * per + start + 1 : r * per + end + 1] for r in range(rows)])
    return x, y


def detach(state):
    return tuple(z.detach() for z in state) if isinstance(state, tuple) else state.detach()


t0, c0 = time.time(), time.process_time()
if gpt:
    batch, block, lr = a.batch_size or 12, a.block_size, a.lr or 1e-3
    model = Gpt(vocab, block, a.layers or 4, a.heads, a.hidden or 128)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.99), eps=1e-8,
    )
    warmup = min(max(steps // 10, 1), 100)

    def window(data):
        starts = torch.randint(len(data) - block - 1, (batch,))
        x = torch.stack([data[s : s + block] for s in starts])
        y = torch.stack([data[s + 1 : s + block + 1] for s in starts])
        return x, y

    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, lr, warmup, steps, 1e-4)
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
    batch, bptt, lr = a.batch_size or 32, a.block_size, a.lr or 3e-3
    model = RnnLm(a.model, vocab, a.embed, a.hidden or 256, a.layers or 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = min(max(steps // 10, 1), 50)
    data, per = streams(train_ids, batch)
    batches = math.ceil(per / bptt)
    state, i = None, 0
    for step in range(steps):
        if i == batches:  # a new epoch: the streams restart, and so does the state
            state, i = None, 0
        for g in opt.param_groups:
            g["lr"] = lr_at(step, lr, warmup, steps, 1e-4)
        x, y = stream_batch(data, batch, per, i, bptt)
        logits, state = model(x, state)
        state = detach(state)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        i += 1
    model.eval()
    rows = max(batch // 4, 1)
    vdata, vper = streams(valid_ids, rows)
    state, total, count = None, 0.0, 0
    with torch.no_grad():
        for j in range(min(20, math.ceil(vper / bptt))):
            x, y = stream_batch(vdata, rows, vper, j, bptt)
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    valid = total / count
wall, cpu = time.time() - t0, time.process_time() - c0
print(json.dumps({
    "framework": f"torch {torch.__version__}", "model": a.model, "words": a.words, "vocab": vocab, "init": init, "seed": a.seed,
    "steps": steps, "valid_loss": round(valid, 4), "wall_s": round(wall, 1),
    "cores_busy": round(cpu / wall, 2),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
