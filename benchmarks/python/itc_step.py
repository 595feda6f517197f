#!/usr/bin/python3
"""The ITC-only training step of commercemm_bench_steps (`itc/tiny`, `itc/small`), in plain
PyTorch: the same ViT and text transformer (pre-LN blocks, one fused QKV projection, GELU MLP,
LayerNorm eps 1e-6, a learned CLS and positions), the same embedding heads, symmetric InfoNCE
with a learned temperature, AdamW (lr 3e-4, weight decay 0.05), gradient clipping at 1.0, the
same synthetic batch (every other row ends in a padding tail of a quarter of its tokens), fp32
on one torch thread (OpenBLAS uses both cores), as the C++ step runs by default.

Usage: /usr/bin/python3 benchmarks/python/itc_step.py PRESET BATCH [STEPS]
Prints "ms_per_step <float>" after one untimed warm-up step.
"""
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# The presets of include/commercemm/core/model_config.hpp: image (size, patch, layers, width,
# heads), text (vocab, length, layers, width, heads), the MLP ratio and the embedding width.
PRESETS = {
    "tiny": dict(image=(32, 8, 2, 64, 2), text=(8000, 32, 2, 64, 2), mlp=4, embed=64),
    "small": dict(image=(64, 8, 6, 256, 4), text=(8000, 40, 6, 256, 4), mlp=4, embed=256),
}


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, x, allowed=None):
        b, l, w = x.shape
        q, k, v = self.qkv(x).view(b, l, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(w // self.heads)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        return self.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, l, w))


class Block(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width, eps=1e-6), Attention(width, heads)
        self.norm2, self.fc1, self.fc2 = nn.LayerNorm(width, eps=1e-6), nn.Linear(width, mlp * width), nn.Linear(mlp * width, width)

    def forward(self, x, allowed=None):
        x = x + self.attn(self.norm1(x), allowed)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, size, patch, layers, width, heads, mlp):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, width, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.positions = nn.Parameter(torch.randn(1, 1 + (size // patch) ** 2, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, mlp) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, images):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.positions
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class TextTransformer(nn.Module):
    def __init__(self, vocab, length, layers, width, heads, mlp):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.positions = nn.Parameter(torch.randn(1, 1 + length, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, mlp) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, ids, mask):
        b, l = ids.shape
        x = torch.cat([self.cls_token.expand(b, -1, -1), self.embedding(ids)], 1) + self.positions[:, : 1 + l]
        valid = torch.cat([torch.ones(b, 1, dtype=torch.bool), mask.bool()], 1)
        allowed = valid[:, None, None, :]  # [B, 1, 1, L]: every query may attend to real tokens
        for block in self.blocks:
            x = block(x, allowed)
        return self.norm(x)


class ItcModel(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.image = ViT(*p["image"], p["mlp"])
        self.text = TextTransformer(*p["text"], p["mlp"])
        self.image_head = nn.Linear(p["image"][3], p["embed"])
        self.text_head = nn.Linear(p["text"][3], p["embed"])
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.07)))

    def loss(self, images, ids, mask):
        i = F.normalize(self.image_head(self.image(images)[:, 0]), dim=-1)
        t = F.normalize(self.text_head(self.text(ids, mask)[:, 0]), dim=-1)
        logits = i @ t.t() / self.log_temperature.exp().clamp(min=0.01)
        targets = torch.arange(len(i))
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def main():
    preset, batch = sys.argv[1], int(sys.argv[2])
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    torch.set_num_threads(1)
    torch.manual_seed(0)
    p = PRESETS[preset]
    size, (vocab, length) = p["image"][0], p["text"][:2]
    model = ItcModel(p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.05)
    images = torch.randn(batch, 3, size, size)
    ids = torch.randint(3, vocab, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1::2, length - length // 4:] = 0
    ids[1::2, length - length // 4:] = 0

    def step():
        optimizer.zero_grad(set_to_none=True)
        model.loss(images, ids, mask).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # warm-up, untimed
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"ms_per_step {(time.perf_counter() - start) / steps * 1e3:.1f}")


if __name__ == "__main__":
    main()
