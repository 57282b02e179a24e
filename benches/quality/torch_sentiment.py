# PyTorch side of the sentiment quality recipe (`benches/quality/README.md`): the data, model,
# optimizer and schedule of `examples/sentiment.rs` on the rt-polarity data. The split, the
# vocabulary and every epoch's batches are the example's exactly (its SplitMix64 shuffle, its
# WordTokenizer, its length bucketing, written out in order.py); the initial weights and dropout
# masks come from PyTorch's generator.
#
#   .venv/bin/python benches/quality/torch_sentiment.py POS NEG --seed 42 --threads 1
#
# The model: nn.Embedding(vocab, 64), a one-layer bidirectional nn.LSTM of 64 units over packed
# sequences, the two directions' final states concatenated, dropout 0.3 on the embeddings and
# before nn.Linear(128, 2); Adam lr 2e-3, batch 32, 4 epochs; validation accuracy on the last 10%.
# The last line printed is JSON.
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import order  # order.py, beside this script (its directory is on the path)
from torch.nn.utils.rnn import pack_padded_sequence

p = argparse.ArgumentParser()
p.add_argument("pos")
p.add_argument("neg")
p.add_argument("--seed", type=int, default=42)
p.add_argument("--epochs", type=int, default=4)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--embed", type=int, default=64)
p.add_argument("--hidden", type=int, default=64)
p.add_argument("--dropout", type=float, default=0.3)
p.add_argument("--init", default="torch-modules", choices=["torch-modules", "word-language-model"])
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


def read_lines(path):
    # ember_lm::data::read_lines: non-blank lines, a trailing \r dropped.
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n").removesuffix("\r") for l in f if l.strip()]


data = [(s, 1) for s in read_lines(a.pos)] + [(s, 0) for s in read_lines(a.neg)]
order.SplitMix64(a.seed).shuffle(data)
split = len(data) * 9 // 10
train_set, valid_set = data[:split], data[split:]

tokenizer = order.WordTokenizer([s for s, _ in train_set], 2)
vocab = tokenizer.vocab


def encode(s):
    return tokenizer.encode(s)[:64]


train_ex = [(encode(s), c) for s, c in train_set]
valid_ex = [(encode(s), c) for s, c in valid_set]


def batches(examples, batch_size, shuffle, bucket, seed, epoch):
    return order.batches([len(e[0]) for e in examples], batch_size, shuffle, bucket, seed, epoch)


def tensors(examples, rows):
    lengths = torch.tensor([len(examples[i][0]) for i in rows])
    ids = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for r, i in enumerate(rows):
        ids[r, : lengths[r]] = torch.tensor(examples[i][0])
    return ids, lengths, torch.tensor([examples[i][1] for i in rows])


class Classifier(nn.Module):
    def __init__(s):
        super().__init__()
        s.embedding = nn.Embedding(vocab, a.embed)
        s.encoder = nn.LSTM(a.embed, a.hidden, batch_first=True, bidirectional=True)
        s.head = nn.Linear(2 * a.hidden, 2)
        s.drop = nn.Dropout(a.dropout)
        if a.init == "word-language-model":
            nn.init.uniform_(s.embedding.weight, -0.1, 0.1)
            nn.init.uniform_(s.head.weight, -0.1, 0.1)
            nn.init.zeros_(s.head.bias)

    def forward(s, ids, lengths):
        x = s.drop(s.embedding(ids))
        _, (h, _) = s.encoder(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        # The last layer's two directions: [2, batch, H] -> [batch, 2H].
        return s.head(s.drop(torch.cat([h[-2], h[-1]], dim=1)))


t0, c0 = time.time(), time.process_time()
model = Classifier()
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
steps = 0
for epoch in range(a.epochs):
    model.train()
    for rows in batches(train_ex, a.batch_size, True, True, a.seed, epoch):
        ids, lengths, labels = tensors(train_ex, rows)
        loss = F.cross_entropy(model(ids, lengths), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
model.eval()
correct = 0
with torch.no_grad():
    for rows in batches(valid_ex, 64, False, False, a.seed, 0):
        ids, lengths, labels = tensors(valid_ex, rows)
        correct += (model(ids, lengths).argmax(1) == labels).sum().item()
wall, cpu = time.time() - t0, time.process_time() - c0
print(json.dumps({
    "framework": f"torch {torch.__version__}", "task": "sentiment", "init": a.init, "seed": a.seed,
    "steps": steps, "valid_acc": round(correct / len(valid_ex), 4), "wall_s": round(wall, 1),
    "cores_busy": round(cpu / wall, 2),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
