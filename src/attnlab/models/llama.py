"""Llama: a LLaMA-style decoder-only language model (Touvron et al. 2023).

Reads top to bottom:
    token ids (B, T)
      -> token embedding (no position table)                        (B, T, C)
      -> num_layers x TransformerBlock, pre-norm:                      (B, T, C)
           x = x + attn(RMSNorm(x))   causal, rotary q/k, num_kv_heads shared key/value heads
           x = x + SwiGLU(RMSNorm(x)) w_down(silu(w_gate x) * w_up x)
      -> final RMSNorm                                                 (B, T, C)
      -> output head (untied by default)                               (B, T, V) logits
Compared with GPT (`attnlab.models.gpt`): RMSNorm instead of LayerNorm (Zhang & Sennrich
2019), the SwiGLU feed-forward (Shazeer 2020), rotary positions (Su et al. 2021) and
grouped-query attention (Ainslie et al. 2023), no biases. The module names are GPT's
(`tok_emb`, `blocks.i.attn.qkv`, `norm`, `lm_head`), so generation, the logit lens and
the app treat both alike; `attnlab.interop.llama` maps them to Hugging Face's
`LlamaForCausalLM`, whose logits this model reproduces.

Notation: B batch, T time, C channels (embed_dim), V vocabulary, H heads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.configs.llama import LLAMA_PRESETS, LlamaConfig
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput, cross_entropy_loss
from attnlab.nn.attention import KVCache
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import RMSNorm
from attnlab.nn.positional import RotaryEmbedding
from attnlab.nn.stack import block_stack, init_weights, key_padding_mask, run_blocks

__all__ = ["Llama", "LlamaConfig", "LLAMA_PRESETS"]


class Llama(HookedMixin, CheckpointMixin, nn.Module):
    """LLaMA-style decoder-only transformer language model.

    `save(folder)` / `Llama.from_checkpoint(folder)` (`CheckpointMixin`) write and read its
    checkpoints.

    Args:
        config: a `LlamaConfig` (see `LlamaConfig.from_name("baby")`).
    """

    model_type = "llama"
    config_class = LlamaConfig

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.embed_dim)
        self.pos_emb = None  # positions enter through the rotary embedding inside attention
        rotary = RotaryEmbedding(c.head_dim, c.rope_base) if c.positional == "rotary" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = block_stack(c, rotary=rotary)  # num_layers x TransformerBlock(norm="rms", feed_forward="swiglu")
        # Pre-norm blocks leave the stream un-normalised, so a final norm precedes the head.
        self.norm = RMSNorm(c.embed_dim, c.layer_norm_eps) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(c.embed_dim, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        self.hook_embed, self.hook_final_norm = HookPoint(), HookPoint()  # attnlab.interp
        self.reset_parameters()

    # -- initialisation ------------------------------------------------------

    def reset_parameters(self) -> None:
        """GPT-2's initialisation: N(0, init_std) weights, zero biases, unit norm weights, and
        the projections that write into the residual stream scaled by 1/sqrt(2 * num_layers)."""
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

        The arguments and the returned `ModelOutput` are `attnlab.models.gpt.GPT.forward`'s
        (the causal-LM protocol of `attnlab.decoding.protocol`), so everything that drives a
        GPT drives this model. Here the `cache` holds num_kv_heads keys and values per layer,
        and there is no position table: rotary positions continue after the cache.
        """
        B, T = input_ids.shape
        start = cache.length if cache is not None else 0
        positions = torch.arange(start, start + T, device=input_ids.device)  # (T,)
        x = self.tok_emb(input_ids)  # (B, T, C)
        x = self.drop(self.hook_embed(x) if self.hooked else x)

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
        hidden_states = out.hidden_states[:-1] + [x]  # HF layout: the last entry is after the final norm
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
        """Parameter count (tied weights counted once); there is no position table to exclude."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> KVCache:
        """An empty KV cache for this model."""
        return KVCache(self.config.num_layers)
