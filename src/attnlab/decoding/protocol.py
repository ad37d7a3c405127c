"""What generation needs from a model, as `typing.Protocol`s (structural: no base class to inherit).

`CausalLM` is what `attnlab.decoding.causal` (and the tools that look inside a causal
language model: the logit lens, the app) read; `attnlab.models.gpt.GPT` and
`attnlab.models.llama.Llama` satisfy it, and so does any class with the same attributes.
`DecodingCache` is the key/value cache it grows, `attnlab.nn.attention.KVCache`.
`Seq2SeqLM` is what the greedy and beam-search decoders of `attnlab.decoding.seq2seq`
read; `attnlab.models.seq2seq.Seq2Seq` and `attnlab.models.rnn_seq2seq.RNNSeq2Seq` satisfy it.

They are `runtime_checkable`, so `isinstance(model, CausalLM)` checks that the
attributes and methods exist (not their signatures).

Notation: B batch, T time, S source length, V vocabulary.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class DecodingCache(Protocol):
    """A key/value cache: the model grows it by the positions it is fed.

    `attnlab.nn.attention.KVCache` is one. A decoder never writes into it: it passes it to
    the model's forward (which grows it), reads `length`, reorders its rows (beam search)
    and crops it to take tokens back.
    """

    @property
    def length(self) -> int:
        """Positions already cached (the position of the next token)."""
        ...

    def reorder(self, index: Tensor) -> None:
        """Keep the batch rows `index` (N,), in that order (beam search follows its beams)."""
        ...

    def crop(self, length: int) -> None:
        """Forget the positions from `length` on (take back tokens, e.g. to redraw a step)."""
        ...


@runtime_checkable
class LogitsOutput(Protocol):
    """What a forward returns, as far as decoding reads it (`attnlab.models.outputs.ModelOutput`)."""

    logits: Tensor | None  # (B, T, V)


@runtime_checkable
class CausalLMConfig(Protocol):
    """The configuration fields a causal LM exposes."""

    vocab_size: int  # V
    max_seq_len: int  # the most tokens the model sees at once
    num_layers: int
    positional: str  # "learned", "rotary", ... (how positions enter)


@runtime_checkable
class CausalLM(Protocol):
    """A decoder-only language model that generation and the inspection tools can drive.

    Modules (for the tools that look inside): `tok_emb` (token embedding), `blocks`
    (a ModuleList of `attnlab.nn.block.TransformerBlock`), `norm` (the final norm) and
    `lm_head` (hidden states -> logits).
    """

    model_type: ClassVar[str]  # the registry name, e.g. "gpt"
    config_class: ClassVar[type]
    config: CausalLMConfig
    tok_emb: Any
    blocks: Any
    norm: Any
    lm_head: Any

    def new_cache(self) -> DecodingCache:
        """An empty cache for `forward(..., cache=...)`."""
        ...

    def forward(
        self,
        input_ids: Tensor,
        targets: Tensor | None = None,
        *,
        attention_mask: Tensor | None = None,
        cache: Any | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        last_only: bool = False,
        trace: list[dict[str, Tensor]] | None = None,
    ) -> LogitsOutput:
        """(B, T) ids -> logits (B, T, V) (or (B, 1, V) with `last_only`), growing `cache` by T."""
        ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def parameters(self, recurse: bool = True) -> Any: ...


@runtime_checkable
class Seq2SeqConfigLike(Protocol):
    """The configuration fields the seq2seq decoders read."""

    vocab_size: int
    max_target_len: int  # the longest output a learned position table holds
    positional: str
    bos_id: int  # the decoder starts from it
    eos_id: int  # a hypothesis ends with it
    pad_id: int  # what finished rows are padded with


@runtime_checkable
class Seq2SeqLM(Protocol):
    """An encoder-decoder that greedy decoding and beam search can drive.

    `encode` returns an object with `last_hidden_state` (B, S, C) and `attention_mask`
    (B, S) that is a dataclass (the decoders select its rows with `dataclasses.replace`:
    every tensor field must be batch-first, e.g. a recurrent encoder's final state (B, L, H)).
    """

    config: Seq2SeqConfigLike

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Any: ...

    def decode(
        self, decoder_input_ids: Tensor, encoder_output: Any, *, cache: Any | None = None, last_only: bool = False
    ) -> LogitsOutput:
        """(N, t) target ids -> logits (N, t, V) (or (N, 1, V) with `last_only`), growing `cache`."""
        ...

    def new_cache(self) -> DecodingCache: ...


__all__ = ["CausalLM", "CausalLMConfig", "DecodingCache", "LogitsOutput", "Seq2SeqConfigLike", "Seq2SeqLM"]
