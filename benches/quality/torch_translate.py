# PyTorch side of the translation quality recipe (`benches/quality/README.md`): the data, model,
# optimizer and evaluation of `examples/translate.rs --model rnn` on Tatoeba-layout pairs. The
# split, both vocabularies and every epoch's batches are the example's exactly (its SplitMix64
# shuffle, WordTokenizer and length bucketing, written out in order.py);
# the initial weights and dropout masks come from PyTorch's generator.
#
#   .venv/bin/python benches/quality/torch_translate.py PAIRS --epochs 10 --seed 7 --threads 1
#
# The model is the translation tutorial's EncoderRNN + AttnDecoderRNN (GRU, Bahdanau attention,
# width 128, dropout 0.1 on the embeddings) over packed sources with padding masked in the
# attention; teacher forcing, cross-entropy ignoring padding, Adam 3e-3; greedy decoding of up to
# 30 tokens for the held-out BLEU (sacrebleu) of the first 200 held-out pairs. The last line
# printed is JSON.
import argparse
import json
import resource
import time

import sacrebleu
import torch
import torch.nn as nn
import torch.nn.functional as F
import order  # order.py, beside this script (its directory is on the path)
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

p = argparse.ArgumentParser()
p.add_argument("pairs")
p.add_argument("--seed", type=int, default=7)
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--width", type=int, default=128)
p.add_argument("--eval", type=int, default=200)
p.add_argument("--init", default="torch-modules", choices=["torch-modules", "word-language-model"])
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


pairs = []
with open(a.pairs, encoding="utf-8") as f:
    for line in f:
        line = line.rstrip("\n").removesuffix("\r")
        if line.strip():
            cols = line.split("\t")
            pairs.append((cols[0], cols[1]))
order.SplitMix64(a.seed).shuffle(pairs)
held_out = max(len(pairs) // 10, 1)
test, train = pairs[:held_out], pairs[held_out:]
src_tok = order.WordTokenizer([s for s, _ in train], 2)
tgt_tok = order.WordTokenizer([t for _, t in train], 2)
PAD, BOS, EOS = 0, 2, 3
train_ex = [(src_tok.encode(s)[:30], tgt_tok.encode(t)[:30]) for s, t in train]
H = a.width


class Model(nn.Module):
    def __init__(s):
        super().__init__()
        s.src_emb = nn.Embedding(src_tok.vocab, H)
        s.enc = nn.GRU(H, H, batch_first=True)
        s.tgt_emb = nn.Embedding(tgt_tok.vocab, H)
        s.Wa, s.Ua, s.Va = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, 1)
        s.dec = nn.GRU(2 * H, H, batch_first=True)
        s.out = nn.Linear(H, tgt_tok.vocab)
        s.drop = nn.Dropout(0.1)
        if a.init == "word-language-model":
            for w in (s.src_emb.weight, s.tgt_emb.weight, s.out.weight):
                nn.init.uniform_(w, -0.1, 0.1)
            nn.init.zeros_(s.out.bias)

    def encode(s, src, lengths):
        x = s.drop(s.src_emb(src))
        packed, h = s.enc(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        memory, _ = pad_packed_sequence(packed, batch_first=True, total_length=src.shape[1])
        pad = torch.arange(src.shape[1])[None, :] >= lengths[:, None]
        return memory, s.Ua(memory), pad, h

    def step(s, emb, memory, keys, pad, h):
        # emb [B, 1, H]; the query is the last layer's hidden state.
        scores = s.Va(torch.tanh(s.Wa(h[-1])[:, None, :] + keys)).squeeze(2)
        weights = torch.softmax(scores.masked_fill(pad, float("-inf")), dim=1)
        context = torch.bmm(weights[:, None, :], memory)
        o, h = s.dec(torch.cat([emb, context], dim=2), h)
        return s.out(o), h

    def forward(s, src, lengths, tgt_in):
        memory, keys, pad, h = s.encode(src, lengths)
        emb = s.drop(s.tgt_emb(tgt_in))
        logits = []
        for t in range(tgt_in.shape[1]):
            o, h = s.step(emb[:, t : t + 1], memory, keys, pad, h)
            logits.append(o)
        return torch.cat(logits, dim=1)


def padded(rows):
    n = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (n - len(r)) for r in rows])


t0, c0 = time.time(), time.process_time()
model = Model()
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
src_lengths = [len(s) for s, _ in train_ex]
steps = 0
for epoch in range(a.epochs):
    model.train()
    for rows in order.batches(src_lengths, a.batch_size, True, True, a.seed, epoch):
        src = padded([train_ex[i][0] for i in rows])
        lengths = torch.tensor([len(train_ex[i][0]) for i in rows])
        tgt_in = padded([[BOS] + train_ex[i][1] for i in rows])
        tgt_out = padded([train_ex[i][1] + [EOS] for i in rows])
        logits = model(src, lengths, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, tgt_tok.vocab), tgt_out.reshape(-1), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
model.eval()
hyps = []
with torch.no_grad():
    for s, _ in test[: a.eval]:
        ids = src_tok.encode(s)
        if not ids:
            hyps.append("")
            continue
        memory, keys, pad, h = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        token, out = BOS, []
        for _ in range(30):
            o, h = model.step(model.tgt_emb(torch.tensor([[token]])), memory, keys, pad, h)
            token = int(o[0, -1].argmax())
            if token == EOS:
                break
            out.append(token)
        hyps.append(tgt_tok.decode(out))
refs = [t.lower() for _, t in test[: a.eval]]
bleu = sacrebleu.corpus_bleu(hyps, [refs])
wall, cpu = time.time() - t0, time.process_time() - c0
print(json.dumps({
    "framework": f"torch {torch.__version__}", "task": "translate", "init": a.init, "seed": a.seed,
    "steps": steps, "bleu": round(bleu.score, 2), "wall_s": round(wall, 1),
    "cores_busy": round(cpu / wall, 2),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
