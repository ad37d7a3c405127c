"""GPT: a decoder-only transformer language model (Radford et al. 2018, 2019).

Reads top to bottom:
    token ids (B, T)
      -> token embedding + position information              (B, T, C)
      -> num_layers x TransformerBlock (causal self-attention)  (B, T, C)
      -> final LayerNorm (pre-norm models)                     (B, T, C)
      -> output head (tied to the token embedding)             (B, T, V) logits
The model returns logits (no softmax inside) and, given targets, the mean
cross-entropy loss. Parameter names (`tok_emb`, `pos_emb`, `blocks.i.attn.qkv`, ...)
are shared with the NumPy GPT (`attnlab.scratch.gpt`) so that checkpoints move freely
between the two engines.

Notation: B batch, T time, C channels (embed_dim), V vocabulary, H heads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.models.gpt_config import GPT_PRESETS, GPTConfig
from attnlab.models.outputs import ModelOutput
from attnlab.nn.attention import KVCache, padding_mask
from attnlab.nn.block import TransformerBlock
from attnlab.nn.layers import layer_norm
from attnlab.nn.positional import position_modules

__all__ = ["GPT", "GPTConfig", "GPT_PRESETS"]

IGNORE_INDEX = -100  # target value that is not scored (padding), as in PyTorch and HF


class GPT(nn.Module):
    """Decoder-only transformer language model.

    Args:
        config: a `GPTConfig` (see `GPTConfig.from_name("baby")`).
    """

    model_type = "gpt"
    config_class = GPTConfig

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.embed_dim)
        self.pos_emb, rotary = position_modules(c.positional, c.max_seq_len, c.embed_dim, c.head_dim, c.rope_base)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                c.embed_dim,
                c.num_heads,
                c.hidden_dim,
                dropout=c.dropout,
                activation=c.activation,
                norm_first=c.norm_first,
                bias=c.bias,
                layer_norm_eps=c.layer_norm_eps,
                rotary=rotary,
            )
            for _ in range(c.num_layers)
        )
        # Pre-norm blocks leave the stream un-normalised, so a final norm precedes the head.
        self.norm = layer_norm(c.embed_dim, c.layer_norm_eps, c.bias) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(c.embed_dim, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        self.reset_parameters()

    # -- initialisation ------------------------------------------------------

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, and the projections
        that write into the residual stream scaled by 1/sqrt(2 * num_layers)."""
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        residual_std = std / math.sqrt(2 * self.config.num_layers)
        for block in self.blocks:
            nn.init.normal_(block.attn.out.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.ff.fc2.weight, mean=0.0, std=residual_std)

    # -- forward ---------------------------------------------------------------

    def forward(
        self,
        input_ids: Tensor,
        targets: Tensor | None = None,
        *,
        attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        last_only: bool = False,
        trace: list[dict[str, Tensor]] | None = None,
    ) -> ModelOutput:
        """Next-token logits for every position.

        Args:
            input_ids: (B, T) token ids.
            targets: (B, T) next-token ids; positions equal to -100 are not scored.
            attention_mask: (B, T) with 1 for real tokens and 0 for padding (HF style);
                padded keys are never attended to.
            cache: a `KVCache` for incremental decoding (positions continue after it).
            output_attentions: return per-layer (B, H, T, S) attention weights.
            output_hidden_states: return the (num_layers + 1) hidden states (HF layout).
            last_only: compute logits for the last position only (generation).
            trace: a list to receive one dict of intermediate tensors per block.
        Returns:
            `ModelOutput` with logits (B, T, V) (or (B, 1, V) with `last_only`) and loss.
        """
        B, T = input_ids.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.max_seq_len and self.config.positional in ("learned", "sinusoidal", "fourier"):
            raise ValueError(
                f"sequence of {start + T} tokens exceeds the context of {self.config.max_seq_len}; "
                "crop the input to the last max_seq_len tokens"
            )
        positions = torch.arange(start, start + T, device=input_ids.device)  # (T,)
        x = self.tok_emb(input_ids)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions)  # (T, C) broadcast over the batch
        x = self.drop(x)

        mask = None
        if attention_mask is not None:
            if cache is not None and attention_mask.size(1) != start + T:
                raise ValueError("with a cache, attention_mask must cover cached and new tokens")
            mask = padding_mask(attention_mask)  # (B, 1, 1, S)

        hidden_states: list[Tensor] = []
        attentions: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            if output_hidden_states:
                hidden_states.append(x)
            block_trace = {} if trace is not None else None
            out = block(
                x,
                mask=mask,
                is_causal=True,
                cache=cache.layers[i] if cache is not None else None,
                positions=positions,
                need_weights=output_attentions,
                trace=block_trace,
            )
            x = out.hidden
            if output_attentions:
                attentions.append(out.attention)
            if trace is not None:
                trace.append(block_trace)
        x = self.norm(x)
        if output_hidden_states:
            hidden_states.append(x)  # HF GPT-2 layout: the last entry is after the final norm
        if last_only:
            x = x[:, -1:, :]
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return ModelOutput(
            logits=logits,
            loss=loss,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )

    # -- utilities ---------------------------------------------------------------

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameter count (tied weights counted once); optionally without position tables."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings and isinstance(self.pos_emb, nn.Embedding):
            n -= self.pos_emb.weight.numel()
        return n

    def new_cache(self) -> KVCache:
        """An empty KV cache for this model."""
        return KVCache(self.config.num_layers)

    def save(self, folder: str | Path, tokenizer: Any | None = None, metadata: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint folder (config.json, model.safetensors, tokenizer)."""
        from attnlab.models.registry import save_model

        return save_model(self, folder, tokenizer=tokenizer, metadata=metadata)

    @classmethod
    def from_checkpoint(cls, folder: str | Path, map_location: str | torch.device = "cpu") -> "GPT":
        """Load a GPT checkpoint (written by either engine)."""
        from attnlab.models.registry import load_model

        model, _ = load_model(folder, map_location=map_location, expect=cls.model_type)
        return model
