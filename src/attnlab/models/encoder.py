"""Encoder: a bidirectional transformer (BERT, Devlin et al. 2019; ESM-2, Lin et al. 2023).

Reads top to bottom:
    token ids (B, T) (+ attention mask (B, T), token types (B, T))
      -> token embedding (+ ESM-2 "token dropout" rescaling)
         + position table (learned / sinusoidal) + token-type embedding   (B, T, C)
      -> embedding LayerNorm (BERT) and dropout                          (B, T, C)
      -> num_layers x TransformerBlock (no causal mask; padding keys masked) (B, T, C)
      -> final LayerNorm (pre-norm models: ESM-2's emb_layer_norm_after)  (B, T, C)
      -> head: masked-LM logits (B, T, V), sequence logits (B, K) from the [CLS] state
         or the mean over real tokens, or token logits (B, T, K)
Every token sees every other (real) token, so an encoder is trained by masked-language
modelling (`attnlab.train.mlm`): 15% of the tokens are chosen and the model predicts
them from both sides. Two families are covered by one config:
  * BERT: post-norm blocks, learned positions, token types, embedding LayerNorm,
    eps 1e-12 (`EncoderConfig.from_name("small")`, imported BERT/MiniLM weights);
  * ESM-2: pre-norm blocks, rotary positions, no embedding norm, a final LayerNorm,
    "token dropout" (`from_name("protein-small")`, imported ESM-2 weights).
Outputs follow Hugging Face's layouts: `hidden_states` is (embeddings output, the
output of each block), the last one after the final norm; `attentions` are
(B, H, T, T) softmax weights per layer.

Notation: B batch, T time (tokens), C channels (embed_dim), V vocabulary, H heads,
K labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.configs.base import IGNORE_INDEX, Activation, TransformerConfig
from attnlab.configs.base import EncoderPositional as Positional
from attnlab.errors import ConfigError
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import get_activation, layer_norm
from attnlab.nn.positional import position_modules
from attnlab.nn.stack import block_stack, init_weights, key_padding_mask, run_blocks

__all__ = ["Encoder", "EncoderConfig", "ENCODER_PRESETS", "MaskedLMHead", "pool_hidden", "IGNORE_INDEX"]

# IGNORE_INDEX (-100, from attnlab.configs.base): the label of unmasked / padding positions, not scored.
# ESM-2 was trained masking 15% of tokens, 80% of those with <mask>; its "token dropout"
# rescales embeddings by the share of unmasked tokens seen in training.
ESM_MASK_RATIO_TRAIN = 0.15 * 0.8

HeadKind = Literal["none", "mlm", "sequence", "token"]
Pooling = Literal["cls", "mean"]


@dataclass(frozen=True)
class EncoderConfig(TransformerConfig):
    """Hyper-parameters of a bidirectional transformer encoder (BERT / ESM-2 family).

    The shared fields are `TransformerConfig`'s (`attnlab.configs.base`); those redeclared
    here have BERT's defaults, and the rest are the encoder's own.
    """

    vocab_size: int = 64  # number of token ids; set from the tokenizer at training time
    max_seq_len: int = 128  # context length: the most tokens one example may have
    dropout: float = 0.1  # dropout on embeddings, attention weights and residual branches
    activation: Activation = "gelu"  # feed-forward (and MLM-head) non-linearity; BERT and ESM-2 use exact gelu
    norm_first: bool = False  # pre-norm blocks (ESM-2) or post-norm (BERT, the original transformer)
    positional: Positional = "learned"  # position information: learned table (BERT), sinusoidal, rotary (ESM-2) or none
    layer_norm_eps: float = 1e-12  # epsilon inside every LayerNorm (BERT 1e-12, ESM-2 1e-5)
    bias: bool = True  # biases in linear layers and LayerNorms
    tie_weights: bool = True  # the MLM head's output matrix is the token-embedding matrix
    type_vocab_size: int = 0  # token-type (segment A/B) embeddings; 0 = none (BERT uses 2)
    embed_norm: bool = True  # LayerNorm after summing the embeddings (BERT yes, ESM-2 no)
    final_norm: bool = False  # LayerNorm after the last block (needed by pre-norm models; ESM-2's emb_layer_norm_after)
    pad_token_id: int | None = 0  # id of the padding token (its embedding starts at zero)
    mask_token_id: int | None = None  # id of the [MASK] / <mask> token (needed by token_dropout)
    token_dropout: bool = False  # ESM-2: zero the embeddings of mask tokens and rescale the rest
    head: HeadKind = "mlm"  # output head: none (hidden states only), mlm, sequence or token classification
    num_labels: int = 2  # classes of the sequence / token head (1 = regression for the sequence head)
    pooling: Pooling = "cls"  # how the sequence head summarises a sequence: the first ([CLS]) state or the mean

    preset_kind = "encoder"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.type_vocab_size < 0:
            raise ConfigError(f"model.type_vocab_size must be >= 0 (0 = no token types), got {self.type_vocab_size}")
        for name in ("pad_token_id", "mask_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(
                    f"model.{name} ({value}) must be a token id below model.vocab_size ({self.vocab_size})"
                )
        if self.token_dropout and self.mask_token_id is None:
            raise ConfigError("model.token_dropout needs model.mask_token_id (the id of the mask token)")
        if self.head in ("sequence", "token") and self.num_labels < 1:
            raise ConfigError(f"model.num_labels must be at least 1 for a {self.head} head, got {self.num_labels}")
        if self.head == "token" and self.num_labels < 2:
            raise ConfigError("a token-classification head needs model.num_labels >= 2")


# BERT-style defaults (post-norm, learned positions, embedding LayerNorm) unless stated.
_ESM2_STYLE: dict[str, Any] = dict(
    norm_first=True,
    positional="rotary",
    embed_norm=False,
    final_norm=True,
    layer_norm_eps=1e-5,
    token_dropout=True,
    vocab_size=33,
    pad_token_id=1,
    mask_token_id=32,
)
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    # Two tiny layers: fast enough for unit tests.
    "mini": dict(max_seq_len=32, num_layers=2, num_heads=2, embed_dim=32, dropout=0.0),
    # A BERT for the CPU: 4 layers, 4 heads, 128 dims, context 128 (~0.8 M parameters + embeddings).
    "small": dict(max_seq_len=128, num_layers=4, num_heads=4, embed_dim=128),
    # BERT-base's shape (Devlin et al. 2019), for reference and imports: 110 M parameters.
    "bert-base": dict(
        vocab_size=30522,
        max_seq_len=512,
        num_layers=12,
        num_heads=12,
        embed_dim=768,
        type_vocab_size=2,
    ),
    # A small ESM-2 for proteins (ESM-2 alphabet of `ProteinTokenizer`): 4 pre-norm layers with
    # rotary positions, 128 dims; masked-LM pretraining on ~5k peptides fits in minutes on 2 cores.
    "protein-small": dict(max_seq_len=256, num_layers=4, num_heads=4, embed_dim=128, dropout=0.0, **_ESM2_STYLE),
    # ESM-2 8M's shape (facebook/esm2_t6_8M_UR50D), for reference and imports.
    "esm2-8m": dict(max_seq_len=1026, num_layers=6, num_heads=20, embed_dim=320, dropout=0.0, **_ESM2_STYLE),
}
EncoderConfig.presets = ENCODER_PRESETS


# ---------------------------------------------------------------------------
# Heads and pooling
# ---------------------------------------------------------------------------


def pool_hidden(hidden: Tensor, attention_mask: Tensor | None, method: str = "mean") -> Tensor:
    """Summarise token states into one vector per sequence.

    Args:
        hidden: (B, T, C) token states.
        attention_mask: (B, T) 1/True at real tokens (special tokens included), 0 at padding;
            None = all real.
        method: "mean" (average over real tokens, as sentence-transformers does) or "cls"
            (the state of the first token).
    Returns:
        (B, C) pooled vectors.
    """
    if method == "cls":
        return hidden[:, 0]
    if method != "mean":
        raise ValueError(f"unknown pooling {method!r}; choose cls or mean")
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    # clamp: a row without real tokens gives a zero vector instead of 0/0
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


class MaskedLMHead(nn.Module):
    """BERT's / ESM-2's masked-LM head: dense -> activation -> LayerNorm -> vocabulary logits.

    The output matrix (`decoder.weight`, (V, C)) is usually tied to the token embedding;
    the output bias is a separate (V,) parameter.
    """

    def __init__(self, embed_dim: int, vocab_size: int, activation: str, eps: float, bias: bool = True):
        super().__init__()
        self.dense = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.act = get_activation(activation)
        self.norm = layer_norm(embed_dim, eps, bias)
        self.decoder = nn.Linear(embed_dim, vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, V) logits."""
        return self.decoder(self.norm(self.act(self.dense(x)))) + self.bias


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


class Encoder(HookedMixin, CheckpointMixin, nn.Module):
    """Bidirectional transformer encoder with an optional MLM / classification head.

    Args:
        config: an `EncoderConfig` (see `EncoderConfig.from_name("small")`).
    """

    model_type = "encoder"
    config_class = EncoderConfig

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.embed_dim)
        self.pos_emb, rotary = position_modules(c.positional, c.max_seq_len, c.embed_dim, c.head_dim, c.rope_base)
        self.type_emb = nn.Embedding(c.type_vocab_size, c.embed_dim) if c.type_vocab_size > 0 else None
        self.emb_norm = layer_norm(c.embed_dim, c.layer_norm_eps, c.bias) if c.embed_norm else nn.Identity()
        self.drop = nn.Dropout(c.dropout)
        self.blocks = block_stack(c, rotary=rotary)  # num_layers x TransformerBlock
        self.norm = layer_norm(c.embed_dim, c.layer_norm_eps, c.bias) if c.final_norm else nn.Identity()
        self.mlm_head: MaskedLMHead | None = None
        self.classifier: nn.Linear | None = None
        if c.head == "mlm":
            self.mlm_head = MaskedLMHead(c.embed_dim, c.vocab_size, c.activation, c.layer_norm_eps, c.bias)
            if c.tie_weights:
                self.mlm_head.decoder.weight = self.tok_emb.weight
        elif c.head in ("sequence", "token"):
            self.head_drop = nn.Dropout(c.dropout)
            self.classifier = nn.Linear(c.embed_dim, c.num_labels)
        # hook points (attnlab.interp): token embedding, position embedding, the embedding layer's
        # output (after its norm: the stream the first block reads), the final norm's output
        self.hook_embed, self.hook_embed_out, self.hook_final_norm = HookPoint(), HookPoint(), HookPoint()
        if self.pos_emb is not None:
            self.hook_pos_embed = HookPoint()
        self.reset_parameters()

    # -- initialisation ------------------------------------------------------

    def reset_parameters(self) -> None:
        """BERT initialisation: N(0, init_std) weights and embeddings, zero biases, unit
        LayerNorm gains, and a zero embedding for the padding token."""
        init_weights(self, self.config.init_std)  # no residual rescaling in BERT
        if self.mlm_head is not None:
            nn.init.zeros_(self.mlm_head.bias)
        pad = self.config.pad_token_id
        if pad is not None:
            with torch.no_grad():
                self.tok_emb.weight[pad].zero_()

    # -- forward ---------------------------------------------------------------

    def embed(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """The embedding layer's output (the first entry of `hidden_states`).

        Args:
            input_ids: (B, T) token ids.
            attention_mask: (B, T) 1 at real tokens, 0 at padding (used by token dropout).
            token_type_ids: (B, T) segment ids (zeros when omitted).
        Returns:
            (B, T, C) embeddings after the optional LayerNorm and dropout.
        """
        c = self.config
        B, T = input_ids.shape
        if T > c.max_seq_len and c.positional in ("learned", "sinusoidal"):
            raise ValueError(
                f"sequence of {T} tokens exceeds the context of {c.max_seq_len}; truncate or split the input"
            )
        x = self.tok_emb(input_ids)  # (B, T, C)
        if c.token_dropout:
            # ESM-2: mask tokens carry no embedding; the others are scaled by
            # (1 - training mask ratio) / (1 - this sequence's mask ratio), like dropout at test time.
            is_mask = input_ids == c.mask_token_id  # (B, T)
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            lengths = attention_mask.sum(-1) if attention_mask is not None else torch.full((B,), T, device=x.device)
            observed = is_mask.sum(-1).to(x.dtype) / lengths.to(x.dtype)  # (B,)
            x = x * ((1.0 - ESM_MASK_RATIO_TRAIN) / (1.0 - observed))[:, None, None]
        if self.hooked:
            x = self.hook_embed(x)
        if self.pos_emb is not None:
            positions = torch.arange(T, device=input_ids.device)
            pos = self.pos_emb(positions)  # (T, C) broadcast over the batch
            x = x + (self.hook_pos_embed(pos.expand(B, T, -1).clone()) if self.hooked else pos)
        if self.type_emb is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.type_emb(token_type_ids)
        elif token_type_ids is not None and bool((token_type_ids != 0).any()):
            raise ValueError("this encoder has no token-type embeddings (type_vocab_size = 0); omit token_type_ids")
        x = self.drop(self.emb_norm(x))
        return self.hook_embed_out(x) if self.hooked else x

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        trace: list[dict[str, Tensor]] | None = None,
    ) -> ModelOutput:
        """Encode a batch and apply the head.

        Args:
            input_ids: (B, T) token ids.
            attention_mask: (B, T) 1/True for real tokens, 0/False for padding (HF style);
                padded keys are never attended to. None = no padding.
            token_type_ids: (B, T) segment ids (models with type_vocab_size > 0).
            labels: mlm head: (B, T) original ids at scored positions, -100 elsewhere;
                sequence head: (B,) class ids (or floats when num_labels == 1);
                token head: (B, T) class ids, -100 where not scored.
            output_attentions: return per-layer (B, H, T, T) attention weights.
            output_hidden_states: return the (num_layers + 1) hidden states (HF layout).
            trace: a list to receive one dict of intermediate tensors per block.
        Returns:
            `ModelOutput` with logits ((B, T, V) mlm, (B, K) sequence, (B, T, K) token,
            None without a head), loss when labels are given, and
            extras["last_hidden_state"] (B, T, C) and extras["pooled"] (B, C).
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
        T = input_ids.size(1)
        positions = torch.arange(T, device=input_ids.device)  # (T,) for rotary embeddings
        x = self.embed(input_ids, attention_mask, token_type_ids)
        mask = key_padding_mask(attention_mask)  # (B, 1, 1, T) or None

        out = run_blocks(
            self.blocks,
            x,
            mask=mask,
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
        pooled = pool_hidden(x, attention_mask, self.config.pooling)

        logits, loss = self._head(x, pooled, labels)
        return ModelOutput(
            logits=logits,
            loss=loss,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
            extras={"last_hidden_state": x, "pooled": pooled},
        )

    def encode(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """The last hidden state only (no head, nothing recorded): what embeddings need.

        Args:
            input_ids: (B, T) token ids.
            attention_mask: (B, T) 1 at real tokens, 0 at padding; None = no padding.
            token_type_ids: (B, T) segment ids, or None.
        Returns:
            (B, T, C) states after the final norm (equal to `forward(...).extras["last_hidden_state"]`).
        """
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        x = self.embed(input_ids, attention_mask, token_type_ids)
        mask = key_padding_mask(attention_mask)
        for block in self.blocks:
            x = block(x, mask=mask, positions=positions).hidden
        return self.norm(x)

    def _head(self, x: Tensor, pooled: Tensor, labels: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        kind = self.config.head
        if kind == "mlm":
            logits = self.mlm_head(x)  # (B, T, V)
            return logits, None if labels is None else _masked_cross_entropy(logits, labels)
        if kind == "token":
            logits = self.classifier(self.head_drop(x))  # (B, T, K)
            return logits, None if labels is None else _masked_cross_entropy(logits, labels)
        if kind == "sequence":
            logits = self.classifier(self.head_drop(pooled))  # (B, K)
            if labels is None:
                return logits, None
            if self.config.num_labels == 1:  # regression
                return logits, F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
            return logits, F.cross_entropy(logits, labels.long())
        if labels is not None:
            raise ValueError("this encoder has no head (head='none'), so it cannot score labels")
        return None, None

    # -- utilities ---------------------------------------------------------------

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameter count (tied weights counted once); optionally without the position table."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings and isinstance(self.pos_emb, nn.Embedding):
            n -= self.pos_emb.weight.numel()
        return n


def _masked_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over positions whose label is not -100 (0 with gradient if none is)."""
    flat_labels = labels.reshape(-1).long()
    if not bool((flat_labels != IGNORE_INDEX).any()):
        return logits.sum() * 0.0  # nothing scored: a zero loss that still backpropagates
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), flat_labels, ignore_index=IGNORE_INDEX)


# ---------------------------------------------------------------------------
# Text -> padded batches (for embedding and fill-in-the-blank)
# ---------------------------------------------------------------------------


def special_token_ids(tokenizer: Any) -> dict[str, int | None]:
    """The ids an encoder needs from a tokenizer: cls, sep, pad, mask, unk.

    [CLS]/<cls> falls back to the begin-of-sequence token and [SEP]/<eos> to the end
    token, so word tokenizers (<bos> ... <eos>) work too.
    """
    cls_id = tokenizer.cls_id if tokenizer.cls_id is not None else tokenizer.bos_id
    sep_id = tokenizer.sep_id if tokenizer.sep_id is not None else tokenizer.eos_id
    return {"cls": cls_id, "sep": sep_id, "pad": tokenizer.pad_id, "mask": tokenizer.mask_id, "unk": tokenizer.unk_id}


def encode_with_specials(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` framed the way encoders expect: `[CLS] text [SEP]`.

    Uses the tokenizer's own `encode_with_specials` when it has one (Hugging Face
    post-processors, ESM's `<cls> ... <eos>`), else its cls/sep (or bos/eos) ids.
    """
    own = getattr(tokenizer, "encode_with_specials", None)
    if own is not None:
        return list(own(text))
    ids = special_token_ids(tokenizer)
    out = list(tokenizer.encode(text))
    if ids["cls"] is not None:
        out = [ids["cls"], *out]
    if ids["sep"] is not None:
        out = [*out, ids["sep"]]
    return out


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad id lists into (B, T) `input_ids` and a (B, T) 0/1 `attention_mask` (int64)."""
    width = max((len(r) for r in rows), default=0)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, : len(row)] = torch.tensor(list(row), dtype=torch.long)
        attention_mask[b, : len(row)] = 1
    return input_ids, attention_mask
