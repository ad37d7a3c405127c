"""A small transformer for sequence tasks, with the interface of the recurrent baselines.

It is the transformer side of the lab "why transformers replaced RNNs": the same
inputs and outputs as `attnlab.models.baselines.RecurrentModel` (token ids (B, T) in,
logits at every position (B, T, K) out), so one training loop and one evaluation
(`attnlab.data.recall_task.accuracy_by_distance`) serve both.

    token ids (B, T)
      -> token embedding + position embedding                   (B, T, E)
      -> num_layers x TransformerBlock (attnlab.nn.block)         (B, T, E)
         causal (each position sees itself and the past, like an RNN) or bidirectional
      -> final LayerNorm                                          (B, T, E)
      -> linear layer at every position                           (B, T, K) logits

Why it solves long-range recall: the query token can attend to the marked token
directly, one attention step away whatever the distance (Vaswani et al. 2017, sec. 4,
"path length between long-range dependencies"). A recurrent network has to carry the
token through every step in between.

Notation: B batch, T time, E embed_dim, K classes, H heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from attnlab.configs.base import (
    IGNORE_INDEX,
    BlockShape,
    check_at_least_one,
    check_dropout,
    check_ff_dim,
    check_heads,
)
from attnlab.configs.base import TablePositional as Positional
from attnlab.errors import ConfigError
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput, cross_entropy_loss
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import layer_norm
from attnlab.nn.positional import FixedPositionalEncoding, LearnedPositionalEmbedding
from attnlab.nn.stack import block_stack, init_weights

__all__ = ["SequenceTransformer", "SequenceTransformerConfig", "SEQUENCE_TRANSFORMER_PRESETS", "IGNORE_INDEX"]


@dataclass(frozen=True)
class SequenceTransformerConfig(BlockShape):
    """Hyper-parameters of the sequence-task transformer.

    Its blocks are always pre-norm GELU blocks with biases (class constants below, not
    fields), built by `attnlab.nn.stack.block_stack` from `block_kwargs()`.
    """

    vocab_size: int = 17  # number of input token ids; set from the task
    num_classes: int | None = None  # outputs per position; None = vocab_size
    max_seq_len: int = 64  # the longest sequence the position embeddings cover
    embed_dim: int = 32  # width E of the residual stream
    num_layers: int = 2  # transformer blocks
    num_heads: int = 2  # attention heads per block; must divide embed_dim
    ff_dim: int | None = None  # hidden width of the feed-forward layer; None = 4 * embed_dim
    dropout: float = 0.0  # dropout on embeddings, attention weights and residual branches
    causal: bool = True  # True: position t sees tokens 0..t (like an RNN); False: every token
    positional: Positional = "learned"  # learned position table or fixed sinusoidal encoding
    init_std: float = 0.02  # std of the normal initialisation of embeddings

    preset_kind = "sequence-transformer"
    activation: ClassVar[str] = "gelu"
    norm_first: ClassVar[bool] = True
    bias: ClassVar[bool] = True
    layer_norm_eps: ClassVar[float] = 1e-5

    def __post_init__(self) -> None:
        check_at_least_one(self, ("vocab_size", "max_seq_len", "embed_dim", "num_layers", "num_heads"))
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"model.num_classes must be at least 1 (or None), got {self.num_classes}")
        check_heads(self.embed_dim, self.num_heads)
        check_ff_dim(self.ff_dim, "4 * embed_dim")
        check_dropout(self.dropout)
        if self.positional not in ("learned", "sinusoidal"):
            raise ConfigError(f"model.positional must be 'learned' or 'sinusoidal', got {self.positional!r}")
        if self.positional == "sinusoidal" and self.embed_dim % 2:
            raise ConfigError(f"sinusoidal positions need an even model.embed_dim, got {self.embed_dim}")
        if self.init_std <= 0:
            raise ConfigError(f"model.init_std must be positive, got {self.init_std}")

    @property
    def output_size(self) -> int:
        """Number of logits per position K."""
        return self.num_classes if self.num_classes is not None else self.vocab_size


SEQUENCE_TRANSFORMER_PRESETS: dict[str, dict[str, Any]] = {
    # Unit tests.
    "tiny": dict(embed_dim=16, num_layers=1, num_heads=2, ff_dim=32),
    # The recall lab: 2 layers of width 32, about 27k parameters with a 64-token context,
    # the size of the `small` LSTM baseline.
    "small": dict(embed_dim=32, num_layers=2, num_heads=2, ff_dim=128),
}
SequenceTransformerConfig.presets = SEQUENCE_TRANSFORMER_PRESETS


class SequenceTransformer(HookedMixin, CheckpointMixin, nn.Module):
    """Token embedding + positions -> transformer blocks -> a linear layer at every position.

    Args:
        config: a `SequenceTransformerConfig`, e.g.
            `SequenceTransformerConfig.from_name("small", vocab_size=17, num_classes=8, max_seq_len=64)`.
    """

    model_type = "sequence_transformer"
    config_class = SequenceTransformerConfig

    def __init__(self, config: SequenceTransformerConfig):
        super().__init__()
        self.config = config
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.embed_dim)
        if c.positional == "learned":
            self.pos_emb: nn.Module = LearnedPositionalEmbedding(c.max_seq_len, c.embed_dim)
        else:
            self.pos_emb = FixedPositionalEncoding(c.max_seq_len, c.embed_dim, "sinusoidal")
        self.drop = nn.Dropout(c.dropout)
        self.blocks = block_stack(c)  # num_layers x pre-norm TransformerBlock
        self.norm = layer_norm(c.embed_dim)
        self.head = nn.Linear(c.embed_dim, c.output_size)
        # hook points (attnlab.interp): token + position embedding, the final norm's output
        self.hook_embed, self.hook_final_norm = HookPoint(), HookPoint()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, init_std) embeddings; PyTorch's default (Kaiming-uniform) linear layers,
        which suit a model this narrow better than GPT-2's N(0, 0.02)."""
        init_weights(self, self.config.init_std, linear=nn.Linear.reset_parameters)

    def forward(
        self,
        input_ids: Tensor,
        targets: Tensor | None = None,
        *,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> ModelOutput:
        """Logits at every position.

        Args:
            input_ids: (B, T) token ids, T <= max_seq_len.
            targets: (B, T) class ids; -100 entries are not scored.
            output_attentions: return each layer's (B, H, T, T) attention weights.
            output_hidden_states: return the (num_layers + 1) states (B, T, E): embeddings,
                then each block's output (the last one after the final norm).
        Returns:
            `ModelOutput` with logits (B, T, K) and the mean cross-entropy over scored
            positions when targets are given.
        """
        B, T = input_ids.shape
        if T > self.config.max_seq_len:
            raise ConfigError(
                f"sequence of {T} tokens is longer than model.max_seq_len = {self.config.max_seq_len}; "
                "build the model with a larger max_seq_len"
            )
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.tok_emb(input_ids) + self.pos_emb(positions)  # (B, T, E)
        x = self.drop(self.hook_embed(x) if self.hooked else x)
        hidden_states: list[Tensor] = []
        attentions: list[Tensor] = []
        for block in self.blocks:
            if output_hidden_states:
                hidden_states.append(x)
            out = block(x, is_causal=self.config.causal, need_weights=output_attentions)
            x = out.hidden
            if output_attentions:
                attentions.append(out.attention)
        x = self.norm(x)
        if self.hooked:
            x = self.hook_final_norm(x)
        if output_hidden_states:
            hidden_states.append(x)
        logits = self.head(x)  # (B, T, K)
        return ModelOutput(
            logits=logits,
            loss=cross_entropy_loss(logits, targets),  # mean over the targets that are not -100
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


def _register() -> None:
    # Checkpoints of this model load through attnlab.models.registry.load_model once this
    # module is imported; the registry's own table should list it too (see docs/vision.md).
    from attnlab.models.registry import MODEL_CLASSES, register_model

    if "sequence_transformer" not in MODEL_CLASSES:
        register_model("sequence_transformer", "attnlab.models.sequence_transformer:SequenceTransformer")


_register()
