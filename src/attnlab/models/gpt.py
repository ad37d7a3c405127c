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

import torch
from torch import Tensor, nn

from attnlab.configs.base import IGNORE_INDEX
from attnlab.models.base import CheckpointMixin
from attnlab.models.gpt_config import GPT_PRESETS, GPTConfig
from attnlab.models.outputs import ModelOutput, cross_entropy_loss
from attnlab.nn.attention import KVCache
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import layer_norm
from attnlab.nn.positional import position_modules
from attnlab.nn.stack import block_stack, init_weights, key_padding_mask, run_blocks

__all__ = ["GPT", "GPTConfig", "GPT_PRESETS", "IGNORE_INDEX"]


class GPT(HookedMixin, CheckpointMixin, nn.Module):
    """Decoder-only transformer language model.

    `save(folder)` / `GPT.from_checkpoint(folder)` (`CheckpointMixin`) write and read its
    checkpoints, which the NumPy GPT reads and writes too.

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
        self.blocks = block_stack(c, rotary=rotary)  # num_layers x TransformerBlock
        # Pre-norm blocks leave the stream un-normalised, so a final norm precedes the head.
        self.norm = layer_norm(c.embed_dim, c.layer_norm_eps, c.bias) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(c.embed_dim, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        # hook points (attnlab.interp): token embedding, position embedding, the final norm's output
        self.hook_embed, self.hook_final_norm = HookPoint(), HookPoint()
        if self.pos_emb is not None:
            self.hook_pos_embed = HookPoint()
        self.reset_parameters()

    # -- initialisation ------------------------------------------------------

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, and the projections
        that write into the residual stream scaled by 1/sqrt(2 * num_layers)."""
        init_weights(self, self.config.init_std, residual=[(self.blocks, self.config.num_layers)])

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
        if self.hooked:
            x = self.hook_embed(x)
        if self.pos_emb is not None:
            pos = self.pos_emb(positions)  # (T, C) broadcast over the batch
            x = x + (self.hook_pos_embed(pos.expand(B, T, -1).clone()) if self.hooked else pos)
        x = self.drop(x)

        mask = key_padding_mask(attention_mask, cache, T)  # (B, 1, 1, S) or None
        out = run_blocks(
            self.blocks,
            x,
            mask=mask,
            is_causal=True,
            cache=cache,
            positions=positions,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            trace=trace,
        )
        x = self.norm(out.hidden)
        if self.hooked:
            x = self.hook_final_norm(x)
        hidden_states = out.hidden_states[:-1] + [x]  # HF GPT-2 layout: the last entry is after the final norm
        attentions = out.attentions
        if last_only:
            x = x[:, -1:, :]
        logits = self.lm_head(x)  # (B, T, V)
        return ModelOutput(
            logits=logits,
            loss=cross_entropy_loss(logits, targets),  # mean over the targets that are not -100
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
