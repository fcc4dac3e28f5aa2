#!/usr/bin/env python3
"""PyTorch reference for `tinycats bench dit-step`: the same DiT as crates/models/src/dit.rs
(patch embed as a linear map, fixed 2D sin-cos positions, sinusoidal t embedding ×1000 + MLP,
class embedding with a null class, adaLN-Zero blocks, exact GELU, final layer, unpatchify), the
same flow-matching velocity loss, AdamW, grad-norm clip 1.0, batch and fp32 (bf16 autocast with
--bf16 on CUDA). Prints one JSON line: {"images_per_s", "step_s", "threads", "device", "torch", "params"}."""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def pos_embed(hidden, grid):
    q = hidden // 4
    omega = 1.0 / 10000 ** (torch.arange(q, dtype=torch.float64) / q)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    def enc(p):
        a = p.reshape(-1, 1).double() * omega
        return torch.cat([a.sin(), a.cos()], 1)
    return torch.cat([enc(xs), enc(ys)], 1).float().unsqueeze(0)


def ln(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Block(nn.Module):
    def __init__(self, h, heads, mlp):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc1, self.fc2 = nn.Linear(h, mlp * h), nn.Linear(mlp * h, h)
        self.ada = nn.Linear(h, 6 * h)

    def forward(self, x, c):
        b, t, d = x.shape
        s1, c1, g1, s2, c2, g2 = self.ada(F.silu(c)).chunk(6, 1)
        q, k, v = self.qkv(modulate(ln(x), s1, c1)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        x = x + g1.unsqueeze(1) * self.proj(a)
        return x + g2.unsqueeze(1) * self.fc2(F.gelu(self.fc1(modulate(ln(x), s2, c2))))


class DiT(nn.Module):
    def __init__(self, size, patch, hidden, depth, heads, mlp, classes, channels=3):
        super().__init__()
        self.p, self.g, self.h, self.c = patch, size // patch, hidden, channels
        self.x_embed = nn.Linear(patch * patch * channels, hidden)
        self.t1, self.t2 = nn.Linear(256, hidden), nn.Linear(hidden, hidden)
        self.y = nn.Embedding(classes + 1, hidden)
        self.blocks = nn.ModuleList([Block(hidden, heads, mlp) for _ in range(depth)])
        self.f_ada, self.f_lin = nn.Linear(hidden, 2 * hidden), nn.Linear(hidden, patch * patch * channels)
        self.register_buffer("pe", pos_embed(hidden, self.g))
        self.register_buffer("freqs", torch.exp(-math.log(10000) * torch.arange(128) / 128))

    def forward(self, x, t, y):
        n, p, g, ch = x.shape[0], self.p, self.g, self.c
        x = x.reshape(n, ch, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(n, g * g, p * p * ch)
        h = self.x_embed(x) + self.pe
        a = (t * 1000).unsqueeze(1) * self.freqs
        c = self.t2(F.silu(self.t1(torch.cat([a.cos(), a.sin()], 1)))) + self.y(y)
        for b in self.blocks:
            h = b(h, c)
        sh, sc = self.f_ada(F.silu(c)).chunk(2, 1)
        out = self.f_lin(modulate(ln(h), sh, sc))
        return out.reshape(n, g, g, p, p, ch).permute(0, 5, 1, 3, 2, 4).reshape(n, ch, g * p, g * p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    m = DiT(a.size, a.patch, a.hidden, a.depth, a.heads, 4, 12, a.channels).to(dev).train()
    opt = torch.optim.AdamW(m.parameters(), lr=4e-4, betas=(0.9, 0.99), weight_decay=0.0)
    x1 = torch.rand(a.batch, a.channels, a.size, a.size, device=dev) * 2 - 1
    y = torch.randint(0, 13, (a.batch,), device=dev)

    def step():
        noise = torch.randn_like(x1)
        t = torch.sigmoid(torch.randn(a.batch, device=dev))
        tb = t.view(-1, 1, 1, 1)
        xt = (1 - tb) * noise + tb * x1
        opt.zero_grad(set_to_none=True)
        with torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.bf16):
            loss = F.mse_loss(m(xt, t, y).float(), x1 - noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    for _ in range(2):
        step()
    if a.device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    if a.device == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"images_per_s": a.batch / dt, "step_s": dt, "threads": torch.get_num_threads(), "device": a.device,
                      "bf16": a.bf16, "torch": torch.__version__, "params": sum(p.numel() for p in m.parameters())}))


if __name__ == "__main__":
    main()
