"""A straightforward PyTorch GPT: the baseline attnlab's GPT is timed against.

This is how workshop code usually writes the model (and how attnlab's own GPT is
*not* written): one `Head` module per attention head, looped over in Python,
separate query/key/value projections per head, a registered lower-triangular mask
applied with `masked_fill`, an explicit softmax, and `torch.cat` of the heads.
Same architecture and parameter count as `GPTConfig.from_name("baby")`: 4 layers,
4 heads, 128 dims, context 64, rotary positions, no biases, pre-norm, GELU, tied
embeddings (`rotary=False` gives nanoGPT's learned position table instead).
It is correct; it is just not fast. Used only by `bench_gpt.py`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def rotate(x, base: float = 10000.0):
    """Rotary positions, written out: rotate channel pairs (i, i + D/2) by p * base^(-2i/D)."""
    T, D = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    angles = torch.arange(T, dtype=torch.float32)[:, None] * inv_freq[None, :]
    cos, sin = torch.cat([angles.cos(), angles.cos()], -1), torch.cat([angles.sin(), angles.sin()], -1)
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Head(nn.Module):
    def __init__(self, embed_dim: int, head_dim: int, max_seq_len: int, rotary: bool = True):
        super().__init__()
        self.key = nn.Linear(embed_dim, head_dim, bias=False)
        self.query = nn.Linear(embed_dim, head_dim, bias=False)
        self.value = nn.Linear(embed_dim, head_dim, bias=False)
        self.rotary = rotary
        self.register_buffer("tril", torch.tril(torch.ones(max_seq_len, max_seq_len)))

    def forward(self, x):
        B, T, C = x.shape
        k, q, v = self.key(x), self.query(x), self.value(x)
        if self.rotary:
            q, k = rotate(q), rotate(k)
        wei = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        return wei @ v


class MultiHead(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, max_seq_len: int, rotary: bool = True):
        super().__init__()
        self.heads = nn.ModuleList(
            Head(embed_dim, embed_dim // num_heads, max_seq_len, rotary) for _ in range(num_heads)
        )
        self.proj = nn.Linear(embed_dim, embed_dim, bias=False)

    def forward(self, x):
        return self.proj(torch.cat([h(x) for h in self.heads], dim=-1))


class Block(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, max_seq_len: int, rotary: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dim, bias=False)
        self.sa = MultiHead(embed_dim, num_heads, max_seq_len, rotary)
        self.ln2 = nn.LayerNorm(embed_dim, bias=False)
        self.ff = nn.Sequential(
            nn.Linear(embed_dim, 4 * embed_dim, bias=False), nn.GELU(), nn.Linear(4 * embed_dim, embed_dim, bias=False)
        )

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        return x + self.ff(self.ln2(x))


class ReferenceGPT(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 128,
        num_heads: int = 4,
        num_layers: int = 4,
        max_seq_len: int = 64,
        rotary: bool = True,
    ):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, embed_dim)
        self.pos = None if rotary else nn.Embedding(max_seq_len, embed_dim)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, max_seq_len, rotary) for _ in range(num_layers)])
        self.ln_f = nn.LayerNorm(embed_dim, bias=False)
        self.head = nn.Linear(embed_dim, vocab_size, bias=False)
        self.head.weight = self.tok.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
        for b in self.blocks:
            nn.init.normal_(b.sa.proj.weight, 0.0, 0.02 / math.sqrt(2 * num_layers))
            nn.init.normal_(b.ff[2].weight, 0.0, 0.02 / math.sqrt(2 * num_layers))

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.tok(idx)
        if self.pos is not None:
            x = x + self.pos(torch.arange(T, device=idx.device))
        logits = self.head(self.ln_f(self.blocks(x)))
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
