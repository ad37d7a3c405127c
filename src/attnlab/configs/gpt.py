"""The GPT configuration, shared by the PyTorch GPT (`models/gpt.py`) and the NumPy GPT
(`scratch/gpt.py`). Torch-free on purpose, so the NumPy engine never imports torch, and
below both engines in the layering (README, "Design"): `scratch` may import it without
importing `models`. `attnlab.models.gpt_config` and `attnlab.models.gpt` re-export it.

Architecture (GPT-2 style, Radford et al. 2019; nanoGPT's layout):
    x = tok_emb[idx] + pos_emb[0:T]          (B, T, C)
    for each block (pre-norm):  x = x + attn(norm1(x));  x = x + ff(norm2(x))
    logits = norm(x) @ tok_emb.weight^T      (B, T, V)   (weight tying)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attnlab.configs.base import Activation, Positional, TransformerConfig

__all__ = ["GPTConfig", "GPT_PRESETS", "Positional", "Activation"]


@dataclass(frozen=True)
class GPTConfig(TransformerConfig):
    """Hyper-parameters of a decoder-only transformer (GPT).

    The fields (and their defaults, GPT's) are `TransformerConfig`'s (`attnlab.configs.base`):
    vocab_size, max_seq_len, num_layers, num_heads, embed_dim, ff_dim, dropout, bias,
    tie_weights, positional, activation, norm_first, layer_norm_eps, init_std, rope_base;
    and its own `attn_only`.
    Presets: `nano`, `baby`, `small` (`GPTConfig.from_name("baby")`).
    """

    # attention-only blocks (no feed-forward): the two-layer models of Elhage et al. 2021 and
    # Olsson et al. 2022, where induction heads are easiest to see (`attnlab interp induction`)
    attn_only: bool = False

    preset_kind = "GPT"

    def block_kwargs(self) -> dict[str, Any]:
        """`TransformerConfig.block_kwargs()`, with `feed_forward="none"` for an attention-only GPT."""
        kwargs = super().block_kwargs()
        return {**kwargs, "feed_forward": "none"} if self.attn_only else kwargs


GPT_PRESETS: dict[str, dict[str, Any]] = {
    # Two tiny layers: fast enough for unit tests.
    "nano": dict(max_seq_len=32, num_layers=2, num_heads=2, embed_dim=32),
    # nanoGPT's CPU example for tiny Shakespeare: 4 layers, 4 heads, 128 dims, context 64,
    # with rotary positions instead of a learned table: on tiny Shakespeare with nanoGPT's
    # settings they reach a validation loss of 1.77 instead of 1.88-1.91 after 2,000 steps
    # (benchmarks/RESULTS.md). `--model.positional=learned` gives nanoGPT's model exactly.
    "baby": dict(max_seq_len=64, num_layers=4, num_heads=4, embed_dim=128, positional="rotary"),
    # nanoGPT's shakespeare-char model (6 layers, 6 heads, 384 dims, context 256), rotary too.
    "small": dict(max_seq_len=256, num_layers=6, num_heads=6, embed_dim=384, dropout=0.2, positional="rotary"),
}
GPTConfig.presets = GPT_PRESETS
