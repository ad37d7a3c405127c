"""Seq2Seq: an encoder-decoder transformer (decoding it: `attnlab.decoding.seq2seq`).

The architecture of "Attention Is All You Need" (Vaswani et al., 2017, fig. 1), with
pre-norm blocks by default (Xiong et al., 2020) and one vocabulary shared by source
and target (the token embedding is also the output head, as in the paper, sec. 3.4).
Reads top to bottom:

    source ids (B, S)                              target ids, shifted right (B, T)
      -> token embedding + positions  (B, S, C)      -> token embedding + positions   (B, T, C)
      -> num_encoder_layers x                        -> num_decoder_layers x
         [self-attention, feed-forward] (B, S, C)       [causal self-attention,
      -> final LayerNorm (pre-norm)                      cross-attention to the encoder
         = encoder output ------------------------->     output, feed-forward]        (B, T, C)
                                                     -> final LayerNorm (pre-norm)
                                                     -> output head (tied)            (B, T, V) logits

Training uses teacher forcing: the decoder reads `<bos> y1 .. yn` and is scored on
`y1 .. yn <eos>` (labels; -100 on padding is not scored). Generation feeds its own
tokens back one at a time, reusing a KV cache: the self-attention keys/values grow a
step at a time, the cross-attention ones are computed once from the encoder output.

Decoding (greedy and beam search) lives in `attnlab.decoding.seq2seq`; `Seq2Seq.generate`
calls it. `sequence_log_probs` (bottom of the file) scores given outputs.

Notation: B batch, S source length, T target length, C channels (embed_dim),
V vocabulary, H heads, K beam width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.configs.base import IGNORE_INDEX, Activation, BlockShape, Positional, check_at_least_one
from attnlab.decoding import seq2seq as seq2seq_decoding
from attnlab.decoding.seq2seq import Generation, beam_search, greedy_decode  # the decoders, re-exported
from attnlab.errors import ConfigError
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput
from attnlab.nn.attention import KVCache, padding_mask
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import layer_norm
from attnlab.nn.positional import position_modules
from attnlab.nn.stack import block_stack, init_weights

__all__ = [
    "Seq2Seq",
    "Seq2SeqConfig",
    "SEQ2SEQ_PRESETS",
    "EncoderOutput",
    "Generation",
    "greedy_decode",
    "beam_search",
    "sequence_log_probs",
    "shift_right",
    "IGNORE_INDEX",
]


@dataclass(frozen=True)
class Seq2SeqConfig(BlockShape):
    """Hyper-parameters of an encoder-decoder transformer.

    Not a `TransformerConfig`: two stacks (num_encoder_layers, num_decoder_layers) and two
    context lengths instead of num_layers and max_seq_len; the block fields, their checks,
    `head_dim`, `hidden_dim`, `block_kwargs()` and `from_name` are shared (`BlockShape`).
    """

    vocab_size: int = 32  # token ids shared by source and target; set from the tokenizer at training time
    max_source_len: int = 64  # most source tokens (the `<eos>` appended to a source included)
    max_target_len: int = 64  # most decoder positions: `<bos>` + target tokens (= labels incl. `<eos>`)
    num_encoder_layers: int = 2  # encoder blocks
    num_decoder_layers: int = 2  # decoder blocks (each with self- and cross-attention)
    num_heads: int = 4  # attention heads per attention layer; must divide embed_dim
    embed_dim: int = 128  # width of the residual stream (C)
    ff_dim: int | None = None  # hidden width of the feed-forward layers; None = 4 * embed_dim
    dropout: float = 0.0  # dropout on attention weights, residual branches and embeddings
    bias: bool = True  # biases in linear layers and LayerNorms
    tie_weights: bool = True  # output head shares the token-embedding matrix
    positional: Positional = "learned"  # positions of both stacks: learned, sinusoidal, fourier, rotary or none
    activation: Activation = "gelu"  # feed-forward non-linearity
    norm_first: bool = True  # pre-norm blocks (stable) or post-norm (the original transformer)
    layer_norm_eps: float = 1e-5  # epsilon inside LayerNorm
    init_std: float = 0.02  # std of the normal initialisation of weights
    rope_base: float = 10000.0  # base of the rotary frequencies (positional = rotary)
    pad_id: int = 0  # padding token: never attended to in sources, never scored in labels
    bos_id: int = 1  # the decoder's start token
    eos_id: int = 2  # end of sequence: appended to sources and targets; decoding stops at it

    preset_kind = "seq2seq"

    def __post_init__(self) -> None:
        check_at_least_one(
            self,
            (
                "vocab_size",
                "max_source_len",
                "max_target_len",
                "num_encoder_layers",
                "num_decoder_layers",
                "num_heads",
                "embed_dim",
            ),
        )
        self.check_block_fields()
        specials = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        for name, value in specials.items():
            if not 0 <= value < self.vocab_size:
                raise ConfigError(f"model.{name} must be a token id in [0, vocab_size={self.vocab_size}), got {value}")
        if len(set(specials.values())) != 3:
            raise ConfigError(f"model.pad_id, bos_id and eos_id must be three different tokens, got {specials}")


SEQ2SEQ_PRESETS: dict[str, dict[str, Any]] = {
    # One layer each side, 32 dims: fast enough for unit tests.
    "tiny": dict(
        max_source_len=24, max_target_len=24, num_encoder_layers=1, num_decoder_layers=1, num_heads=2, embed_dim=32
    ),
    # Two layers each side, 64 dims: learns the generated tasks in minutes on 2 CPU cores.
    "small": dict(
        max_source_len=80, max_target_len=40, num_encoder_layers=2, num_decoder_layers=2, num_heads=4, embed_dim=64
    ),
    # The base transformer's shape at a tenth of the width (6 + 6 layers, 8 heads, 256 dims).
    "base": dict(
        max_source_len=128,
        max_target_len=128,
        num_encoder_layers=6,
        num_decoder_layers=6,
        num_heads=8,
        embed_dim=256,
        dropout=0.1,
    ),
}
Seq2SeqConfig.presets = SEQ2SEQ_PRESETS


def shift_right(labels: Tensor, bos_id: int, pad_id: int) -> Tensor:
    """Teacher forcing input from labels: (B, T) `y1 .. yn <eos>` -> `<bos> y1 .. yn`.

    Unscored label positions (-100) become `pad_id`.
    """
    shifted = labels.new_full(labels.shape, pad_id)
    shifted[:, 0] = bos_id
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_id)


@dataclass
class EncoderOutput:
    """What `Seq2Seq.encode` returns (and `decode` reads)."""

    last_hidden_state: Tensor  # (B, S, C) the encoder output the decoder attends to
    attention_mask: Tensor  # (B, S) bool, True on real source tokens
    hidden_states: tuple[Tensor, ...] | None = None  # (num_encoder_layers + 1) x (B, S, C)
    attentions: tuple[Tensor, ...] | None = None  # num_encoder_layers x (B, H, S, S)


class Seq2Seq(HookedMixin, CheckpointMixin, nn.Module):
    """Encoder-decoder transformer with a shared source/target vocabulary.

    Args:
        config: a `Seq2SeqConfig` (see `Seq2SeqConfig.from_name("small")`).
    """

    model_type = "seq2seq"
    config_class = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.embed_dim)  # shared by encoder, decoder and head
        # source and target positions mean different things, so each side has its own table
        # (rotary positions are relative: one RotaryEmbedding serves both sides)
        self.encoder_pos_emb, rotary = position_modules(
            c.positional, c.max_source_len, c.embed_dim, c.head_dim, c.rope_base
        )
        self.decoder_pos_emb, _ = position_modules(c.positional, c.max_target_len, c.embed_dim, c.head_dim, c.rope_base)
        self.drop = nn.Dropout(c.dropout)
        # rotary rotates self-attention only; cross-attention has no relative position
        self.encoder_blocks = block_stack(c, rotary=rotary, num_layers=c.num_encoder_layers)
        self.decoder_blocks = block_stack(c, rotary=rotary, num_layers=c.num_decoder_layers, cross_attention=True)
        # Pre-norm blocks leave their streams un-normalised, so each stack ends with a norm.
        self.encoder_norm = layer_norm(c.embed_dim, c.layer_norm_eps, c.bias) if c.norm_first else nn.Identity()
        self.decoder_norm = layer_norm(c.embed_dim, c.layer_norm_eps, c.bias) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(c.embed_dim, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        # hook points (attnlab.interp): each side's embedded input, the encoder's output (what
        # cross-attention reads), the decoder's final norm output
        self.hook_encoder_embed, self.hook_encoder_out = HookPoint(), HookPoint()
        self.hook_decoder_embed, self.hook_final_norm = HookPoint(), HookPoint()
        self.reset_parameters()

    # -- initialisation ------------------------------------------------------

    def reset_parameters(self) -> None:
        """GPT-2 style initialisation: N(0, init_std) weights, zero biases, and the
        projections that write into a residual stream scaled by 1/sqrt(2 * layers)."""
        c = self.config
        init_weights(
            self,
            c.init_std,
            residual=[(self.encoder_blocks, c.num_encoder_layers), (self.decoder_blocks, c.num_decoder_layers)],
        )

    # -- the encoder -----------------------------------------------------------

    def encode(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """Run the encoder over the source.

        Args:
            input_ids: (B, S) source ids (normally ending with `<eos>`, then padding).
            attention_mask: (B, S) 1 for real tokens, 0 for padding (HF style); default
                `input_ids != pad_id`.
            output_attentions: also return per-layer (B, H, S, S) attention weights.
            output_hidden_states: also return the (num_encoder_layers + 1) hidden states.
        Returns:
            `EncoderOutput` with the (B, S, C) encoder output.
        """
        B, S = input_ids.shape
        if S > self.config.max_source_len and self.config.positional in ("learned", "sinusoidal", "fourier"):
            raise ValueError(
                f"source of {S} tokens exceeds model.max_source_len = {self.config.max_source_len}; "
                "shorten the source or train a model with a larger max_source_len"
            )
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_id
        attention_mask = attention_mask.bool()
        positions = torch.arange(S, device=input_ids.device)  # (S,)
        x = self.tok_emb(input_ids)  # (B, S, C)
        if self.encoder_pos_emb is not None:
            x = x + self.encoder_pos_emb(positions)  # (S, C) broadcast over the batch
        if self.hooked:
            x = self.hook_encoder_embed(x)
        x = self.drop(x)
        mask = padding_mask(attention_mask)  # (B, 1, 1, S): no query looks at padding

        hidden_states: list[Tensor] = []
        attentions: list[Tensor] = []
        for block in self.encoder_blocks:
            if output_hidden_states:
                hidden_states.append(x)
            out = block(x, mask=mask, positions=positions, need_weights=output_attentions)
            x = out.hidden
            if output_attentions:
                attentions.append(out.attention)
        x = self.encoder_norm(x)
        if self.hooked:
            x = self.hook_encoder_out(x)
        if output_hidden_states:
            hidden_states.append(x)  # HF layout (T5): the last entry is after the final norm
        return EncoderOutput(
            last_hidden_state=x,
            attention_mask=attention_mask,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )

    # -- the decoder -----------------------------------------------------------

    def decode(
        self,
        decoder_input_ids: Tensor,
        encoder_output: EncoderOutput,
        *,
        decoder_attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        last_only: bool = False,
    ) -> ModelOutput:
        """Next-token logits for every target position, attending to the encoder output.

        Args:
            decoder_input_ids: (B, T) target ids starting with `<bos>` (shifted right).
            encoder_output: what `encode` returned for the same batch rows.
            decoder_attention_mask: (B, T) 1 for real tokens, 0 for padding; with a cache it
                covers cached and new tokens. Right padding needs none (causality hides it).
            cache: a `KVCache` for incremental decoding (positions continue after it).
            output_attentions: return self- and cross-attention weights per layer.
            output_hidden_states: return the (num_decoder_layers + 1) hidden states.
            last_only: compute logits for the last position only (generation).
        Returns:
            `ModelOutput` with logits (B, T, V) (or (B, 1, V) with `last_only`), decoder
            `hidden_states` / `attentions` and `cross_attentions` (B, H, T, S).
        """
        B, T = decoder_input_ids.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.max_target_len and self.config.positional in ("learned", "sinusoidal", "fourier"):
            raise ValueError(
                f"target of {start + T} positions exceeds model.max_target_len = {self.config.max_target_len}; "
                "decode fewer tokens or train a model with a larger max_target_len"
            )
        positions = torch.arange(start, start + T, device=decoder_input_ids.device)  # (T,)
        x = self.tok_emb(decoder_input_ids)  # (B, T, C)
        if self.decoder_pos_emb is not None:
            x = x + self.decoder_pos_emb(positions)
        if self.hooked:
            x = self.hook_decoder_embed(x)
        x = self.drop(x)

        mask = None
        if decoder_attention_mask is not None:
            if decoder_attention_mask.size(1) != start + T:
                raise ValueError("decoder_attention_mask must cover the cached and the new target tokens")
            mask = padding_mask(decoder_attention_mask)  # (B, 1, 1, start + T)
        context = encoder_output.last_hidden_state  # (B, S, C)
        context_mask = padding_mask(encoder_output.attention_mask)  # (B, 1, 1, S)

        hidden_states: list[Tensor] = []
        attentions: list[Tensor] = []
        cross_attentions: list[Tensor] = []
        for i, block in enumerate(self.decoder_blocks):
            if output_hidden_states:
                hidden_states.append(x)
            out = block(
                x,
                mask=mask,
                is_causal=True,
                context=context,
                context_mask=context_mask,
                cache=cache.layers[i] if cache is not None else None,
                cross_cache=cache.cross[i] if cache is not None else None,
                positions=positions,
                need_weights=output_attentions,
            )
            x = out.hidden
            if output_attentions:
                attentions.append(out.attention)
                cross_attentions.append(out.cross_attention)
        x = self.decoder_norm(x)
        if self.hooked:
            x = self.hook_final_norm(x)
        if output_hidden_states:
            hidden_states.append(x)
        if last_only:
            x = x[:, -1:, :]
        logits = self.lm_head(x)  # (B, T, V)
        return ModelOutput(
            logits=logits,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
            cross_attentions=tuple(cross_attentions) if output_attentions else None,
        )

    # -- both ----------------------------------------------------------------

    def forward(
        self,
        input_ids: Tensor,
        decoder_input_ids: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        encoder_output: EncoderOutput | None = None,
        cache: KVCache | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        last_only: bool = False,
    ) -> ModelOutput:
        """Encode the source, decode the target with teacher forcing, score it.

        Args:
            input_ids: (B, S) source ids.
            decoder_input_ids: (B, T) decoder input `<bos> y1 .. yn`; default: `labels`
                shifted right.
            labels: (B, T) `y1 .. yn <eos>`; -100 marks positions that are not scored.
            attention_mask: (B, S) source mask, 1 = real token (default `input_ids != pad_id`).
            decoder_attention_mask: (B, T) target mask (only needed for left padding).
            encoder_output: reuse an earlier `encode` result instead of encoding again.
            cache: a `KVCache` for incremental decoding.
            output_attentions: per-layer attention weights: decoder self-attention in
                `attentions`, `cross_attentions`, and `extras["encoder_attentions"]`.
            output_hidden_states: decoder `hidden_states` and `extras["encoder_hidden_states"]`.
            last_only: logits for the last target position only.
        Returns:
            `ModelOutput` (layout of HF's Seq2SeqLMOutput): logits (B, T, V), loss (mean
            cross-entropy over scored positions), and `extras["encoder_last_hidden_state"]`.
        """
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("give decoder_input_ids or labels (the decoder needs a target)")
            decoder_input_ids = shift_right(labels, self.config.bos_id, self.config.pad_id)
        if encoder_output is None:
            encoder_output = self.encode(
                input_ids,
                attention_mask,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        out = self.decode(
            decoder_input_ids,
            encoder_output,
            decoder_attention_mask=decoder_attention_mask,
            cache=cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            last_only=last_only,
        )
        if labels is not None:
            logits = out.logits
            out.loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )
        out.extras["encoder_last_hidden_state"] = encoder_output.last_hidden_state
        if output_hidden_states:
            out.extras["encoder_hidden_states"] = encoder_output.hidden_states
        if output_attentions:
            out.extras["encoder_attentions"] = encoder_output.attentions
        return out

    # -- utilities ---------------------------------------------------------------

    def num_parameters(self) -> int:
        """Parameter count (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> KVCache:
        """An empty KV cache for the decoder (self- and cross-attention of every layer)."""
        return KVCache(self.config.num_decoder_layers)

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        beam_width: int = 1,
        max_new_tokens: int | None = None,
        length_penalty: float = 1.0,
        use_cache: bool = True,
    ) -> Generation:
        """Greedy (`beam_width=1`) or beam-search decoding: `attnlab.decoding.seq2seq.generate`."""
        return seq2seq_decoding.generate(
            self,
            input_ids,
            attention_mask,
            beam_width=beam_width,
            max_new_tokens=max_new_tokens,
            length_penalty=length_penalty,
            use_cache=use_cache,
        )


# ---------------------------------------------------------------------------
# Scoring (decoding itself, greedy and beam search, is in `attnlab.decoding.seq2seq`)
# ---------------------------------------------------------------------------


@torch.no_grad()
def sequence_log_probs(
    model: Seq2Seq, input_ids: Tensor, sequences: Tensor, attention_mask: Tensor | None = None
) -> Tensor:
    """log P(y | x) of given outputs, by one teacher-forced forward pass.

    Args:
        model: a `Seq2Seq` in eval mode.
        input_ids: (B, S) source ids.
        sequences: (B, L) outputs as `Generation.sequences` holds them (no `<bos>`; scored
            up to and including the first `<eos>`, the rest ignored).
        attention_mask: (B, S) source mask.
    Returns:
        (B,) summed log-probabilities.
    """
    c = model.config
    after_eos = (sequences == c.eos_id).long().cumsum(dim=1) - (
        sequences == c.eos_id
    ).long() > 0  # past the first <eos>
    labels = sequences.masked_fill(after_eos, IGNORE_INDEX)
    logits = model(input_ids, labels=labels, attention_mask=attention_mask).logits
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, L, V)
    picked = logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0]  # (B, L)
    return picked.masked_fill(labels == IGNORE_INDEX, 0.0).sum(dim=1)
