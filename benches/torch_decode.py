"""PyTorch CPU reference for `gpt_decode_256` in `benches/gpt.rs`: greedy decoding of 256 tokens
after a 1-token prompt with Hugging Face's `generate` and its key/value cache, on the CPU
configuration's model (vocabulary 65, 4 layers, 4 heads, width 128, 257 positions, the tanh
GELU `gelu_new` as `GptConfig`'s default), eager fp32.

Usage: python benches/torch_decode.py [threads]   (default 2; run it while nothing else is busy)

Prints the median of 10 timed runs after 2 warm-ups, and the tokens per second.
"""
import statistics
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)

config = GPT2Config(vocab_size=65, n_positions=257, n_embd=128, n_layer=4, n_head=4,
                    activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                    bos_token_id=0, eos_token_id=None, pad_token_id=0)
model = GPT2LMHeadModel(config).eval()
prompt = torch.zeros(1, 1, dtype=torch.long)


@torch.no_grad()
def decode():
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, use_cache=True,
                         max_new_tokens=256, min_new_tokens=256)
    assert out.shape[1] == 257
    return out


for _ in range(2):
    decode()
times = []
for _ in range(10):
    t0 = time.perf_counter()
    decode()
    times.append(time.perf_counter() - t0)
dt = statistics.median(times)
print(f"transformers generate, KV cache, 256 tokens: {dt * 1e3:.1f} ms ({256 / dt:.0f} tokens/s), "
      f"torch {torch.__version__}, {torch.get_num_threads()} threads")
