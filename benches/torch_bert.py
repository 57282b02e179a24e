"""PyTorch (transformers) reference for `benches/bert.rs`: a BERT-base-sized
BertForSequenceClassification (12 layers, 768 wide, 12 heads, vocabulary 30522, dropout off),
batch 8 × sequence 128 with the same padding, on the CPU in float32, eager mode:
a fine-tuning step (forward, cross-entropy, backward, AdamW with no decay on biases and
LayerNorm weights) and inference (forward only, under no_grad), with the threads given.

Run: .venv/bin/python benches/torch_bert.py 2      (CPU threads)
     python3 benches/torch_bert.py cuda             (a CUDA GPU, fp32 with TF32 off, as wgpu computes)
"""
import sys
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

torch.manual_seed(0)
arg = sys.argv[1] if len(sys.argv) > 1 else "2"
dev = torch.device("cuda" if arg == "cuda" else "cpu")
if dev.type == "cpu":
    torch.set_num_threads(int(arg))
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
config = BertConfig(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=2)
config._attn_implementation = "sdpa"
model = BertForSequenceClassification(config).train().to(dev)
B, T = 8, 128
lengths = [128, 128, 120, 110, 128, 96, 128, 100]
ids = torch.randint(1000, 21000, (B, T))
mask = torch.zeros((B, T), dtype=torch.long)
for i, n in enumerate(lengths):
    mask[i, :n] = 1
    ids[i, n:] = 0
labels = torch.tensor([0, 1] * 4)
ids, mask, labels = ids.to(dev), mask.to(dev), labels.to(dev)
no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=2e-5)


def step():
    opt.zero_grad(set_to_none=True)
    model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    opt.step()


def timed(f, n):
    for _ in range(2):
        f()
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    sync()
    return (time.perf_counter() - t0) / n


n = 20 if dev.type == "cuda" else 5
dt = timed(step, n)
print(f"torch {dev.type} bert-base train step B={B} T={T}: {dt * 1e3:.1f} ms/step")
model.eval()
with torch.no_grad():
    dt = timed(lambda: model(input_ids=ids, attention_mask=mask), n)
print(f"torch {dev.type} bert-base inference B={B} T={T}: {dt * 1e3:.1f} ms, {B * T / dt:.0f} tokens/s")
