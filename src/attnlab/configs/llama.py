"""The LLaMA configuration (`attnlab.models.llama.Llama`), torch-free like `configs.gpt`.

Architecture (LLaMA, Touvron et al. 2023; Hugging Face's `LlamaForCausalLM`):
    x = tok_emb[idx]                                                (B, T, C)
    for each block:  x = x + attn(rms1(x));  x = x + swiglu(rms2(x))
        attention with rotary positions on q and k and `num_kv_heads` shared key/value heads
    logits = rms(x) @ lm_head^T                                     (B, T, V)
No biases anywhere, no position table, an untied output head by default (as LLaMA).

The feed-forward width follows LLaMA's rule: 2/3 of 4 C (the gate costs a third matrix),
rounded up to a multiple of `multiple_of` (LLaMA uses 256; 32 here suits small models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from attnlab.configs.base import TransformerConfig, check_at_least_one
from attnlab.errors import ConfigError

__all__ = ["LlamaConfig", "LLAMA_PRESETS", "LlamaPositional", "LlamaActivation"]

LlamaPositional = Literal["rotary", "none"]
LlamaActivation = Literal["silu", "gelu", "gelu_tanh", "relu"]

LLAMA_PRESETS: dict[str, dict[str, Any]] = {
    # The GPT presets' sizes, with fewer key/value heads than query heads (grouped-query attention).
    "nano": dict(max_seq_len=32, num_layers=2, num_heads=2, num_kv_heads=1, embed_dim=32),
    "baby": dict(max_seq_len=64, num_layers=4, num_heads=4, num_kv_heads=2, embed_dim=128),
    "small": dict(max_seq_len=256, num_layers=6, num_heads=6, num_kv_heads=2, embed_dim=384, dropout=0.2),
}


@dataclass(frozen=True)
class LlamaConfig(TransformerConfig):
    """Hyper-parameters of a LLaMA-style decoder (RMSNorm, SwiGLU, rotary, grouped-query attention).

    The fields are `TransformerConfig`'s (`attnlab.configs.base`) with LLaMA's defaults where
    they differ (untied head, rotary positions, SiLU gate), plus `num_kv_heads` and
    `multiple_of`. `layer_norm_eps` is the RMSNorm epsilon (Hugging Face's rms_norm_eps);
    `bias` switches biases in every linear layer (RMSNorm never has one).
    Presets: `nano`, `baby`, `small` (`LlamaConfig.from_name("baby")`).
    """

    tie_weights: bool = False  # output head shares the token-embedding matrix (LLaMA: untied)
    positional: LlamaPositional = "rotary"  # rotary positions on queries and keys, or none
    activation: LlamaActivation = "silu"  # the gate's non-linearity (silu = SwiGLU)
    num_kv_heads: int | None = None  # key/value heads (grouped-query attention), dividing num_heads; None = num_heads
    multiple_of: int = 32  # the default ff_dim (2/3 * 4 * embed_dim) is rounded up to a multiple of this

    presets = LLAMA_PRESETS
    preset_kind = "LLaMA"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least_one(self, ("multiple_of",))
        if self.num_kv_heads is not None and (self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads):
            raise ConfigError(
                f"model.num_kv_heads ({self.num_kv_heads}) must be at least 1 and divide model.num_heads ({self.num_heads})"
            )

    @property
    def kv_heads(self) -> int:
        """Key/value heads G (num_kv_heads, or num_heads when it is None)."""
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

    @property
    def hidden_dim(self) -> int:
        """SwiGLU hidden width: ff_dim, or LLaMA's 2/3 * 4 C rounded up to a multiple of multiple_of."""
        if self.ff_dim is not None:
            return self.ff_dim
        hidden = int(2 * 4 * self.embed_dim / 3)
        return self.multiple_of * -(-hidden // self.multiple_of)

    def block_kwargs(self) -> dict[str, Any]:
        """`TransformerBlock` keyword arguments: the base's plus RMSNorm, SwiGLU and the key/value heads."""
        return {**super().block_kwargs(), "norm": "rms", "feed_forward": "swiglu", "num_kv_heads": self.kv_heads}
