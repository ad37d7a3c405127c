"""The transformer probe: a small transformer over frozen per-residue embeddings.

Linear and MLP probes read each vector on its own; the transformer probe lets the
residues of one sequence talk to each other before the read-out, so it can use
context the embedder did not provide (for the one-hot control it is a small
sequence model trained from scratch; for a language model it refines contextual
vectors). This is the "transformer probe" of Protify-style benchmarks; the blocks are
attnlab's own `TransformerBlock`s (pre-norm, rotary positions as in ESM-2, so relative
positions are what it learns and any length works).

    x (B, T, C) --Linear--> (B, T, D) [+ a learned [CLS] vector in front]
      --> transformer_layers x TransformerBlock(D, heads, rotary)   padding keys masked
      --> LayerNorm
      --> residue task:   Linear per position           (B, T, K)
          sequence tasks: pool ("cls" the [CLS] state, "attn" AttentionPooling,
                          "mean" / "max" over residues) --> Linear    (B, K)

Registered as probe kind "transformer" (`takes_residues=True`), so `fit_probe`,
`Probe.save` / `Probe.load` and the `attnlab probe --probe transformer` command use it;
its sizes are the `transformer_*` fields of `ProbeConfig`. `attnlab.bio.probe_kinds.LAZY_PROBE_KINDS`
names this module, which is imported the first time one of its kinds is asked for.

Notation: B batch, T residues (padded), C input channels, D probe width, K outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.bio.pooling import AttentionPooling, max_pool, mean_pool
from attnlab.bio.probe_kinds import ProbeConfig, register_probe
from attnlab.bio.probe_modules import MLPProbe
from attnlab.nn.attention import padding_mask
from attnlab.nn.block import TransformerBlock
from attnlab.nn.positional import RotaryEmbedding


class TransformerProbe(nn.Module):
    """A few transformer blocks over residue vectors, then a per-residue or pooled linear head.

    Args:
        input_dim: C.
        num_outputs: K.
        per_residue: True for the residue task ((B, T, K) output), False for sequence tasks ((B, K)).
        width: D, the projection width.
        num_layers: transformer blocks.
        num_heads: attention heads (D / num_heads must be even for rotary positions).
        dropout: dropout inside the blocks and before the head.
        pool: sequence tasks: "cls", "attn", "mean" or "max".
    """

    def __init__(
        self,
        input_dim: int,
        num_outputs: int,
        per_residue: bool,
        width: int = 128,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.1,
        pool: str = "cls",
    ):
        super().__init__()
        self.per_residue = per_residue
        self.pool_kind = pool
        self.proj = nn.Linear(input_dim, width)
        # A learned [CLS] vector read by the head (sequence tasks with pool "cls").
        self.cls = nn.Parameter(torch.zeros(width)) if (not per_residue and pool == "cls") else None
        rotary = RotaryEmbedding(width // num_heads)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, 2 * width, dropout=dropout, norm_first=True, rotary=rotary)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(width)
        self.attn_pool = AttentionPooling(width) if (not per_residue and pool == "attn") else None
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_outputs)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Read residue vectors x (B, T, C) with mask (B, T) (True = real residue).

        Returns:
            (B, T, K) per residue, or (B, K) per sequence.
        """
        h = self.proj(x)  # (B, T, D)
        if self.cls is not None:
            B = h.shape[0]
            h = torch.cat([self.cls.expand(B, 1, -1), h], dim=1)  # (B, 1 + T, D)
            mask = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        positions = torch.arange(h.shape[1], device=h.device)  # (T,) rotary positions ([CLS] is position 0)
        attend = padding_mask(mask)  # (B, 1, 1, T): every query may attend to the real keys
        for block in self.blocks:
            h = block(h, mask=attend, positions=positions).hidden
        h = self.norm(h)
        if self.per_residue:
            return self.head(self.drop(h))  # (B, T, K)
        if self.cls is not None:
            pooled = h[:, 0]
        elif self.attn_pool is not None:
            pooled = self.attn_pool(h, mask)
        elif self.pool_kind == "max":
            pooled = max_pool(h, mask)
        else:
            pooled = mean_pool(h, mask)
        return self.head(self.drop(pooled))  # (B, K)


@register_probe("transformer", takes_residues=True, description="small transformer over per-residue embeddings")
def _build_transformer(input_dim: int, num_outputs: int, task: str, config: ProbeConfig) -> nn.Module:
    return TransformerProbe(
        input_dim,
        num_outputs,
        per_residue=task == "residue",
        width=config.transformer_dim,
        num_layers=config.transformer_layers,
        num_heads=config.transformer_heads,
        dropout=config.dropout,
        pool=config.transformer_pool,
    )


class AttentionMLPProbe(nn.Module):
    """Attention pooling over residues, then the MLP head: (B, T, C) + mask -> (B, K).

    The `--pool attn --probe mlp` combination (the "attention" kind is attention pooling
    + a linear head).
    """

    def __init__(self, input_dim: int, num_outputs: int, config: ProbeConfig):
        super().__init__()
        self.pool = AttentionPooling(input_dim)
        self.mlp = MLPProbe(input_dim, num_outputs, config.hidden_dim, config.num_hidden_layers, config.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.mlp(self.pool(x, mask))  # (B, K)


@register_probe("attention-mlp", takes_residues=True, description="learned attention pooling + MLP head")
def _build_attention_mlp(input_dim: int, num_outputs: int, task: str, config: ProbeConfig) -> nn.Module:
    from attnlab.errors import ConfigError

    if task == "residue":
        raise ConfigError(
            "attention pooling makes one vector per sequence; for per-residue tasks use linear, mlp or transformer"
        )
    return AttentionMLPProbe(input_dim, num_outputs, config)
