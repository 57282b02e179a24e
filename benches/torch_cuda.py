"""PyTorch on a CUDA GPU, on the shapes of the wgpu rows of `benches/gpt.rs` and `benches/recurrent.rs`.

- GPT training step (forward, cross-entropy, backward, AdamW step), exact GELU and a tied head, the
  model of `../shared/bench/torch_gpt.py`, eager fp32 (TF32 off, as wgpu computes in fp32);
- GPT decoding: 256 greedy tokens after a 1-token prompt with a key/value cache, the CPU
  configuration's model with a block of 257 (as `gpt_decode_256` does);
- recurrent training step (forward, mean-squared loss over the outputs, backward) and forward
  alone of torch.nn.LSTM / GRU / RNN (cuDNN) at the shapes of `benches/recurrent.rs`.

Each figure is the median of 10 timed runs after 3 warm-ups, the GPU synchronised around each run.

Usage: python3 benches/torch_cuda.py
"""
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
# On a machine without CUDA it runs on the CPU, to check the script itself.
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
print(f"device: {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, torch {torch.__version__}")


def timed(fn, n=10, warm=3):
    for _ in range(warm):
        fn()
    sync()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        s.qkv, s.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        s.fc, s.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        s.h = h

    def forward(s, x, cache=None):
        B, T, C = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=2)
        q, k, v = [t.view(B, T, s.h, C // s.h).transpose(1, 2) for t in (q, k, v)]
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        # One query over a cache attends to every cached position: no mask needed.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None)
        x = x + s.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + s.out(F.gelu(s.fc(s.ln2(x))))


class Gpt(nn.Module):
    def __init__(s, V, T, L, H, D):
        super().__init__()
        s.tok, s.pos = nn.Embedding(V, D), nn.Embedding(T, D)
        s.blocks = nn.ModuleList([Block(D, H) for _ in range(L)])
        s.ln, s.head = nn.LayerNorm(D), nn.Linear(D, V, bias=False)
        s.head.weight = s.tok.weight

    def forward(s, idx, start=0, caches=None):
        x = s.tok(idx) + s.pos(torch.arange(start, start + idx.shape[1], device=idx.device))
        for i, b in enumerate(s.blocks):
            x = b(x, None if caches is None else caches[i])
        return s.head(s.ln(x))


for (V, T, L, H, D, B) in [(65, 64, 4, 4, 128, 12), (65, 256, 6, 6, 384, 8)]:
    m = Gpt(V, T, L, H, D).to(dev)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x = torch.randint(0, V, (B, T), device=dev)
    y = torch.randint(0, V, (B, T), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x).view(-1, V), y.view(-1)).backward()
        opt.step()

    dt = timed(step)
    print(f"torch {dev.type} gpt_train_step V{V}_T{T}_L{L}_H{H}_D{D}_B{B}: {dt * 1e3:.2f} ms")

m = Gpt(65, 257, 4, 4, 128).to(dev).eval()


@torch.no_grad()
def decode():
    caches = [[] for _ in m.blocks]
    token = torch.zeros(1, 1, dtype=torch.long, device=dev)
    for i in range(256):
        token = m(token, i, caches)[:, -1:].argmax(-1)
    return token.item()


dt = timed(decode)
print(f"torch {dev.type} gpt_decode_256 kv_cache: {dt * 1e3:.2f} ms ({256 / dt:.0f} tokens/s)")

SHAPES = [(8, 32, 64, 128, 1), (32, 64, 128, 256, 1), (32, 64, 256, 512, 2)]
for kind in (nn.LSTM, nn.GRU, nn.RNN):
    for b, t, i, h, layers in SHAPES:
        net = kind(i, h, num_layers=layers, batch_first=True).to(dev)
        inp = torch.randn(b, t, i, device=dev)

        def train():
            net.zero_grad(set_to_none=True)
            out, _ = net(inp)
            out.pow(2).mean().backward()

        @torch.no_grad()
        def forward():
            net(inp)

        name = f"{kind.__name__.lower()}/B{b}_T{t}_I{i}_H{h}_L{layers}"
        print(f"torch {dev.type} train_step {name}: {timed(train) * 1e3:.3f} ms")
        print(f"torch {dev.type} forward {name}: {timed(forward) * 1e3:.3f} ms")
