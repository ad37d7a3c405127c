"""Configuration of the recurrent encoder-decoder (`attnlab.models.rnn_seq2seq`), torch-free.

One config covers the three pre-transformer models of `attnlab train --task NAME --model ...`:

    --model rnn            attention="none"      Sutskever et al. 2014 / Cho et al. 2014
    --model rnn-bahdanau   attention="additive"  Bahdanau, Cho and Bengio 2015
    --model rnn-luong      attention="general"   Luong, Pham and Manning 2015 (or "dot")

The field names and defaults are the checkpoint format: keep them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from attnlab.configs.base import PresetsMixin, check_at_least_one, check_dropout
from attnlab.errors import ConfigError

__all__ = ["RNNSeq2SeqConfig", "RNN_SEQ2SEQ_PRESETS", "ATTENTION_TYPES", "CELLS", "TASK_MODEL_ATTENTION"]

Cell = Literal["gru", "lstm"]
Attention = Literal["none", "additive", "dot", "general"]
CELLS = ("gru", "lstm")
ATTENTION_TYPES = ("none", "additive", "dot", "general")
# `attnlab train --task NAME --model M`: the attention each recurrent --model starts from
TASK_MODEL_ATTENTION: dict[str, str] = {"rnn": "none", "rnn-bahdanau": "additive", "rnn-luong": "general"}


@dataclass(frozen=True)
class RNNSeq2SeqConfig(PresetsMixin):
    """Hyper-parameters of the recurrent encoder-decoder; presets `tiny` (tests) and `small` (the tasks)."""

    vocab_size: int = 32  # token ids shared by source and target; set from the tokenizer at training time
    max_target_len: int = 128  # default most decoded tokens (no position table: any length runs)
    cell: Cell = "gru"  # recurrent cell of encoder and decoder: gru or lstm
    attention: Attention = "additive"  # none (fixed-size bottleneck), additive (Bahdanau), dot or general (Luong)
    embed_dim: int = 64  # token embedding width E (shared by encoder, decoder)
    hidden_dim: int = 128  # decoder state size H; the encoder's outputs h_j have this size too
    attention_dim: int | None = None  # width A of the additive score's hidden layer; None = hidden_dim
    num_layers: int = 1  # stacked recurrent layers of encoder and decoder
    bidirectional: bool = True  # encoder reads both ways (H/2 per direction, concatenated to H), as Bahdanau
    dropout: float = 0.0  # dropout on embeddings, between stacked layers and before the output layer
    init_std: float = 0.1  # embeddings and linear layers ~ N(0, init_std); recurrent weights stay PyTorch's
    pad_id: int = 0  # padding token: never attended to in sources, never scored in labels
    bos_id: int = 1  # the decoder's start token
    eos_id: int = 2  # end of sequence: appended to sources and targets; decoding stops at it

    positional: ClassVar[str] = "none"  # order comes from the recurrence: no position table, no length limit
    preset_kind = "rnn_seq2seq"

    def __post_init__(self) -> None:
        check_at_least_one(self, ("vocab_size", "max_target_len", "embed_dim", "hidden_dim", "num_layers"))
        if self.attention_dim is not None and self.attention_dim < 1:
            raise ConfigError(f"model.attention_dim must be at least 1 (or None), got {self.attention_dim}")
        check_dropout(self.dropout)
        if self.cell not in CELLS:
            raise ConfigError(f"model.cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTION_TYPES:
            raise ConfigError(f"model.attention must be one of {', '.join(ATTENTION_TYPES)}, got {self.attention!r}")
        if self.bidirectional and self.hidden_dim % 2:
            raise ConfigError(
                f"model.hidden_dim must be even with a bidirectional encoder (H/2 per direction), got {self.hidden_dim}"
            )
        if not self.init_std > 0:
            raise ConfigError(f"model.init_std must be positive, got {self.init_std}")
        specials = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        for name, value in specials.items():
            if not 0 <= value < self.vocab_size:
                raise ConfigError(f"model.{name} must be a token id in [0, vocab_size={self.vocab_size}), got {value}")
        if len(set(specials.values())) != 3:
            raise ConfigError(f"model.pad_id, bos_id and eos_id must be three different tokens, got {specials}")

    @property
    def score_dim(self) -> int:
        """A, the hidden width of Bahdanau's score v_a^T tanh(W_a s + U_a h)."""
        return self.attention_dim if self.attention_dim is not None else self.hidden_dim


RNN_SEQ2SEQ_PRESETS: dict[str, dict[str, Any]] = {
    # 16-wide embeddings, 32-wide states: fast enough for unit tests.
    "tiny": dict(embed_dim=16, hidden_dim=32),
    # One GRU layer, 128-wide states: learns the generated tasks in minutes on 2 CPU cores.
    "small": dict(embed_dim=64, hidden_dim=128),
}
RNNSeq2SeqConfig.presets = RNN_SEQ2SEQ_PRESETS
