"""Baselines the transformers are compared with: an MLP and a ConvNet for images, and
RNN / LSTM / GRU sequence models, plus a probe of vanishing gradients through time.

Image classifiers (input (B, C, H, W) floats, output (B, K) logits):
  MLPClassifier      flatten -> [Linear -> activation -> Dropout] x len(hidden_dims) -> Linear.
                     No notion of space: the pixels could be shuffled (the same shuffle for
                     every image) and it would learn just as well.
  ConvNetClassifier  [Conv 3x3 -> BatchNorm -> ReLU -> MaxPool 2x2] x len(channels) ->
                     flatten -> Linear -> ReLU -> Linear (LeCun et al. 1998 in spirit;
                     BatchNorm from Ioffe & Szegedy 2015). Locality and translation
                     equivariance are built in, which is why it needs little data.
  The "mnist" presets have 100-200k parameters, like the small ViT of the lab.

Sequence model (input (B, T) token ids, output (B, T, K) logits, one per position):
  RecurrentModel     token embedding -> torch.nn.RNN / LSTM / GRU (config.cell) -> Linear.
  What the three cells compute at step t from the input x_t and the previous state
  (sigma = logistic sigmoid, * = element-wise product):
    RNN   (Elman 1990)
        h_t = tanh(W x_t + U h_{t-1} + b)
        The only memory is h_t, rewritten completely at every step. The gradient that
        reaches step t from step t+k is a product of k Jacobians diag(1 - h^2) U; it
        shrinks (or explodes) geometrically with k (Bengio et al. 1994).
    LSTM  (Hochreiter & Schmidhuber 1997; forget gate from Gers et al. 2000)
        i_t = sigma(W_i x_t + U_i h_{t-1} + b_i)     input gate: how much new content to write
        f_t = sigma(W_f x_t + U_f h_{t-1} + b_f)     forget gate: how much old memory to keep
        g_t = tanh (W_g x_t + U_g h_{t-1} + b_g)     candidate content
        o_t = sigma(W_o x_t + U_o h_{t-1} + b_o)     output gate: how much memory to show
        c_t = f_t * c_{t-1} + i_t * g_t              cell state: an additive "conveyor belt"
        h_t = o_t * tanh(c_t)
        Along the cell state the gradient is multiplied only by f_t, so with the forget
        gate near 1 it survives many steps. `forget_bias` = 1 starts it there
        (Jozefowicz et al. 2015).
    GRU   (Cho et al. 2014)
        r_t = sigma(W_r x_t + U_r h_{t-1} + b_r)     reset gate: how much of the past feeds the candidate
        z_t = sigma(W_z x_t + U_z h_{t-1} + b_z)     update gate: how much to keep the old state
        n_t = tanh (W_n x_t + r_t * (U_n h_{t-1} + b_hn) + b_in)
        h_t = z_t * h_{t-1} + (1 - z_t) * n_t        an interpolation: with z_t near 1 the state
                                                     (and its gradient) passes through unchanged
  All three must squeeze the whole past into a fixed-size state and process the
  sequence one step after another; self-attention does neither (Vaswani et al. 2017).

`gradient_norms_through_time` measures |d loss / d h_t| (or d loss / d embedding_t) for
every t: the vanishing-gradient picture for a loss at the last position.

Every model returns `attnlab.models.outputs.ModelOutput` with `.logits` and, when
targets are given, `.loss` (mean cross-entropy; targets equal to -100 are not scored).

Notation: B batch, C channels, H height, W width, K classes, T time, E embed_dim,
N hidden_dim (recurrent state size), L num_layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from attnlab.configs.base import IGNORE_INDEX, PresetsMixin, check_at_least_one, check_dropout
from attnlab.configs.base import BaselineActivation as Activation
from attnlab.errors import ConfigError
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput, cross_entropy_loss

__all__ = [
    "IGNORE_INDEX",
    "MLPConfig",
    "MLPClassifier",
    "ConvNetConfig",
    "ConvNetClassifier",
    "RecurrentConfig",
    "RecurrentModel",
    "build_image_baseline",
    "gradient_norms_through_time",
    "MLP_PRESETS",
    "CONVNET_PRESETS",
    "RECURRENT_PRESETS",
]

Cell = Literal["rnn", "lstm", "gru"]


def _check_image_fields(cfg: Any) -> None:
    check_at_least_one(cfg, ("image_size", "in_channels"))
    if cfg.num_classes < 2:
        raise ConfigError(f"model.num_classes must be at least 2, got {cfg.num_classes}")
    check_dropout(cfg.dropout)


# ---------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPConfig(PresetsMixin):
    """Hyper-parameters of the multi-layer perceptron image classifier (presets: `mnist`, `digits`, `tiny`)."""

    image_size: int = 28  # height = width of the input images in pixels (28 MNIST, 8 digits)
    in_channels: int = 1  # colour channels of the input (1 for grey)
    num_classes: int = 10  # number of classes K
    hidden_dims: tuple[int, ...] = (192, 96)  # width of each hidden layer; () = logistic regression
    activation: Activation = "relu"  # non-linearity after each hidden layer
    dropout: float = 0.1  # dropout after each hidden layer

    preset_kind = "MLP"

    def __post_init__(self) -> None:
        _check_image_fields(self)
        if any(h < 1 for h in self.hidden_dims):
            raise ConfigError(f"model.hidden_dims must all be at least 1, got {self.hidden_dims}")

    @property
    def input_dim(self) -> int:
        """Number of input features: C * H * W."""
        return self.in_channels * self.image_size * self.image_size


MLP_PRESETS: dict[str, dict[str, Any]] = {
    # 784 -> 192 -> 96 -> 10: 170,218 parameters, the size of the lab's small ViT.
    "mnist": dict(image_size=28, hidden_dims=(192, 96), dropout=0.1),
    # 64 -> 64 -> 10 for scikit-learn's 8x8 digits.
    "digits": dict(image_size=8, hidden_dims=(64,), dropout=0.1),
    # Unit tests.
    "tiny": dict(image_size=28, hidden_dims=(32,), dropout=0.0),
}
MLPConfig.presets = MLP_PRESETS


class MLPClassifier(CheckpointMixin, nn.Module):
    """Multi-layer perceptron on flattened pixels.

    Args:
        config: an `MLPConfig` (e.g. `MLPConfig.from_name("mnist")`).
    """

    model_type = "mlp"
    config_class = MLPConfig

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [nn.Flatten()]
        width = config.input_dim
        for hidden in config.hidden_dims:
            layers += [
                nn.Linear(width, hidden),
                nn.ReLU() if config.activation == "relu" else nn.GELU(),
                nn.Dropout(config.dropout),
            ]
            width = hidden
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.num_classes)

    def forward(self, images: Tensor, targets: Tensor | None = None) -> ModelOutput:
        """Class logits.

        Args:
            images: (B, C, H, W) pixels (normalised or in [0, 1], as trained).
            targets: (B,) class ids; -100 entries are not scored.
        Returns:
            `ModelOutput` with logits (B, K) and the mean cross-entropy loss when targets are given.
        """
        c = self.config
        _check_images(images, (c.in_channels, c.image_size, c.image_size), "MLPConfig")
        logits = self.head(self.features(images))  # (B, K)
        return ModelOutput(logits=logits, loss=cross_entropy_loss(logits, targets))


# ---------------------------------------------------------------------------
# ConvNet
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvNetConfig(PresetsMixin):
    """Hyper-parameters of the convolutional image classifier (presets: `mnist`, `digits`, `tiny`)."""

    image_size: int = 28  # height = width of the input images in pixels
    in_channels: int = 1  # colour channels of the input
    num_classes: int = 10  # number of classes K
    channels: tuple[int, ...] = (32, 64, 64)  # output channels of each conv block (each halves H and W)
    kernel_size: int = 3  # convolution kernel size (odd, "same" padding)
    batch_norm: bool = True  # BatchNorm after each convolution
    hidden_dim: int = 128  # width of the fully connected layer before the output; 0 = none
    dropout: float = 0.1  # dropout before each fully connected layer

    preset_kind = "ConvNet"

    def __post_init__(self) -> None:
        _check_image_fields(self)
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"model.channels needs at least one block, each with >= 1 channel, got {self.channels}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size must be a positive odd number, got {self.kernel_size}")
        if self.hidden_dim < 0:
            raise ConfigError(f"model.hidden_dim must be 0 (none) or positive, got {self.hidden_dim}")

    @property
    def feature_size(self) -> int:
        """Height (= width) of the last feature map: halved by each block while it is >= 2."""
        size = self.image_size
        for _ in self.channels:
            if size >= 2:
                size //= 2
        return size


CONVNET_PRESETS: dict[str, dict[str, Any]] = {
    # 3 blocks 28 -> 14 -> 7 -> 3, then 576 -> 128 -> 10: 131,050 parameters.
    "mnist": dict(image_size=28, channels=(32, 64, 64), hidden_dim=128, dropout=0.1),
    # 2 blocks 8 -> 4 -> 2 for scikit-learn's 8x8 digits.
    "digits": dict(image_size=8, channels=(16, 32), hidden_dim=64, dropout=0.1),
    # Unit tests.
    "tiny": dict(image_size=28, channels=(4, 8), hidden_dim=16, dropout=0.0),
}
ConvNetConfig.presets = CONVNET_PRESETS


class ConvNetClassifier(CheckpointMixin, nn.Module):
    """A small VGG-style convolutional network.

    Args:
        config: a `ConvNetConfig` (e.g. `ConvNetConfig.from_name("mnist")`).
    """

    model_type = "convnet"
    config_class = ConvNetConfig

    def __init__(self, config: ConvNetConfig):
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        in_channels, size = config.in_channels, config.image_size
        for out_channels in config.channels:
            # A conv bias is redundant before BatchNorm, which subtracts the mean anyway.
            blocks.append(
                nn.Conv2d(
                    in_channels,
                    out_channels,
                    config.kernel_size,
                    padding=config.kernel_size // 2,
                    bias=not config.batch_norm,
                )
            )
            if config.batch_norm:
                blocks.append(nn.BatchNorm2d(out_channels))
            blocks.append(nn.ReLU())
            if size >= 2:
                blocks.append(nn.MaxPool2d(2))  # (B, C, H/2, W/2), floor for odd sizes
                size //= 2
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        flat = in_channels * size * size
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(config.dropout)]
        if config.hidden_dim:
            head += [nn.Linear(flat, config.hidden_dim), nn.ReLU(), nn.Dropout(config.dropout)]
            flat = config.hidden_dim
        head.append(nn.Linear(flat, config.num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, images: Tensor, targets: Tensor | None = None) -> ModelOutput:
        """Class logits.

        Args:
            images: (B, C, H, W) pixels.
            targets: (B,) class ids; -100 entries are not scored.
        Returns:
            `ModelOutput` with logits (B, K) and the mean cross-entropy loss when targets are given.
        """
        c = self.config
        _check_images(images, (c.in_channels, c.image_size, c.image_size), "ConvNetConfig")
        features = self.features(images)  # (B, channels[-1], feature_size, feature_size)
        logits = self.head(features)  # (B, K)
        return ModelOutput(logits=logits, loss=cross_entropy_loss(logits, targets))


def build_image_baseline(kind: str, preset: str = "mnist", **overrides: Any) -> nn.Module:
    """Build an image baseline by name.

    Args:
        kind: "mlp" or "convnet".
        preset: config preset name ("mnist", "digits", "tiny").
        **overrides: config fields to change, e.g. `num_classes=10, image_size=8`.
    Returns:
        An `MLPClassifier` or a `ConvNetClassifier`.
    """
    if kind == "mlp":
        return MLPClassifier(MLPConfig.from_name(preset, **overrides))
    if kind == "convnet":
        return ConvNetClassifier(ConvNetConfig.from_name(preset, **overrides))
    raise ConfigError(f"unknown image baseline {kind!r}; choose mlp or convnet")


def _check_images(images: Tensor, expected: tuple[int, int, int], config_name: str) -> None:
    if images.dim() != 4 or tuple(images.shape[1:]) != expected:
        raise ConfigError(
            f"this model was built for images of shape (B, {expected[0]}, {expected[1]}, {expected[2]}), "
            f"got {tuple(images.shape)}; build it with {config_name}(image_size=..., in_channels=...) to match the data"
        )


# ---------------------------------------------------------------------------
# RNN / LSTM / GRU
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecurrentConfig(PresetsMixin):
    """Hyper-parameters of the recurrent sequence model (RNN, LSTM or GRU); presets `tiny`, `small`."""

    cell: Cell = "lstm"  # recurrent cell: rnn (Elman), lstm or gru; see the module docstring
    vocab_size: int = 17  # number of input token ids; set from the task or tokenizer
    num_classes: int | None = None  # outputs per position; None = vocab_size (next-token prediction)
    embed_dim: int = 32  # width E of the token embedding fed to the cell
    hidden_dim: int = 64  # size N of the hidden state (and of the LSTM cell state)
    num_layers: int = 1  # stacked recurrent layers L
    dropout: float = 0.0  # dropout between stacked layers and before the output layer
    nonlinearity: Literal["tanh", "relu"] = "tanh"  # activation of the plain rnn cell (ignored otherwise)
    forget_bias: float = 1.0  # initial LSTM forget-gate bias: starts the cell remembering (ignored otherwise)

    preset_kind = "recurrent"

    def __post_init__(self) -> None:
        check_at_least_one(self, ("vocab_size", "embed_dim", "hidden_dim", "num_layers"))
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"model.num_classes must be at least 1 (or None), got {self.num_classes}")
        check_dropout(self.dropout)
        if self.cell not in ("rnn", "lstm", "gru"):
            raise ConfigError(f"model.cell must be rnn, lstm or gru, got {self.cell!r}")

    @property
    def output_size(self) -> int:
        """Number of logits per position K."""
        return self.num_classes if self.num_classes is not None else self.vocab_size


RECURRENT_PRESETS: dict[str, dict[str, Any]] = {
    # Unit tests.
    "tiny": dict(embed_dim=8, hidden_dim=16),
    # The recall lab: about 27k parameters as an LSTM (17 tokens, 8 classes).
    "small": dict(embed_dim=32, hidden_dim=64),
}
RecurrentConfig.presets = RECURRENT_PRESETS


class RecurrentModel(CheckpointMixin, nn.Module):
    """Token embedding -> RNN / LSTM / GRU -> a linear layer at every position.

    The cell is PyTorch's fused `nn.RNN` / `nn.LSTM` / `nn.GRU` (batch_first); the
    module docstring writes out what each computes. Causal by construction: the output
    at step t depends on tokens 0..t only.

    Args:
        config: a `RecurrentConfig` (e.g. `RecurrentConfig.from_name("small", cell="gru", vocab_size=17)`).
    """

    model_type = "recurrent"
    config_class = RecurrentConfig

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.embed_dim)
        rnn_class = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[c.cell]
        extra = {"nonlinearity": c.nonlinearity} if c.cell == "rnn" else {}
        self.rnn = rnn_class(
            c.embed_dim,
            c.hidden_dim,
            num_layers=c.num_layers,
            batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,  # PyTorch warns about dropout with one layer
            **extra,
        )
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_dim, c.output_size)
        if c.cell == "lstm":
            self._init_forget_gate(c.forget_bias)

    def _init_forget_gate(self, value: float) -> None:
        # PyTorch stacks the LSTM gates as (input, forget, cell, output) along dim 0 of each
        # bias; the two biases are added, so set the forget slice of one and zero the other.
        n = self.config.hidden_dim
        with torch.no_grad():
            for layer in range(self.config.num_layers):
                getattr(self.rnn, f"bias_ih_l{layer}")[n : 2 * n].fill_(value)
                getattr(self.rnn, f"bias_hh_l{layer}")[n : 2 * n].zero_()

    def forward(self, input_ids: Tensor, targets: Tensor | None = None, state: Any = None) -> ModelOutput:
        """Logits at every position.

        Args:
            input_ids: (B, T) token ids.
            targets: (B, T) class ids; -100 entries are not scored.
            state: initial state from a previous call's `extras["state"]` (None = zeros):
                h (L, B, N), or (h, c) for an LSTM.
        Returns:
            `ModelOutput` with logits (B, T, K), the mean cross-entropy over scored positions
            when targets are given, and the final state in `extras["state"]`.
        """
        x = self.tok_emb(input_ids)  # (B, T, E)
        outputs, final_state = self.rnn(x, state)  # (B, T, N): top-layer h_t for every t
        logits = self.head(self.drop(outputs))  # (B, T, K)
        return ModelOutput(logits=logits, loss=cross_entropy_loss(logits, targets), extras={"state": final_state})

    def forward_steps(self, input_ids: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Run one time step at a time, keeping every hidden state in the autograd graph.

        Gives the same logits as `forward` (slower). Used to measure d loss / d h_t,
        which the fused `forward` hides inside one kernel.

        Args:
            input_ids: (B, T) token ids.
        Returns:
            (logits (B, T, K), states): states[t] is the full hidden state after step t,
            (L, B, N); the output layer reads states[t][-1], the next step the whole of it.
        """
        x = self.tok_emb(input_ids)  # (B, T, E)
        state: Any = None
        states: list[Tensor] = []
        step_logits = []
        for t in range(x.size(1)):
            _, state = self.rnn(x[:, t : t + 1], state)
            h = state[0] if isinstance(state, tuple) else state  # (L, B, N); the LSTM's c stays internal
            states.append(h)
            step_logits.append(self.head(self.drop(h[-1])))  # (B, K) from the top layer
        return torch.stack(step_logits, dim=1), states  # (B, T, K)


def gradient_norms_through_time(
    model: nn.Module,
    input_ids: Tensor,
    targets: Tensor,
    *,
    wrt: Literal["hidden", "embedding"] = "hidden",
    embedding: nn.Module | None = None,
) -> np.ndarray:
    """How much gradient of the loss reaches each earlier time step.

    With the loss at the last position only (as in `RecallTask`), the curve shows how
    the training signal fades with distance: for a plain RNN it falls geometrically
    from the end towards the start; gated cells keep it up longer; a transformer's
    reaches every position directly.

    Args:
        model: a `RecurrentModel` for `wrt="hidden"`; for `wrt="embedding"` any model whose
            forward(input_ids, targets) returns an object with `.loss` (a GPT too).
        input_ids: (B, T) token ids.
        targets: (B, T) targets, -100 where not scored.
        wrt: "hidden": the top-layer hidden state h_t (the total derivative, through the
            output layer at t and through all later steps); "embedding": the token
            embedding x_t fed in at step t.
        embedding: the embedding module to probe for `wrt="embedding"`; default
            `model.tok_emb`, else the model's first `nn.Embedding`.
    Returns:
        (T,) float64: for each t, the L2 norm of d loss_b / d (h_t or x_t) of each example b,
        averaged over the batch; loss_b is example b's cross-entropy summed over its
        scored positions (so the numbers do not depend on the batch size). The model is run in eval mode (no dropout) and its
        parameter gradients are left untouched.
    """
    # Each example's own loss is summed over its scored positions: the model's mean loss
    # times the number of scored positions, so the numbers do not depend on the batch size.
    num_scored = int((targets != IGNORE_INDEX).sum())
    if num_scored == 0:
        raise ConfigError("targets score no position (all are -100); score at least one")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            if wrt == "hidden":
                if not hasattr(model, "forward_steps"):
                    raise ConfigError("wrt='hidden' needs a RecurrentModel; use wrt='embedding' for other models")
                logits, states = model.forward_steps(input_ids)
                loss = cross_entropy_loss(logits, targets) * num_scored
                grads = torch.autograd.grad(loss, states, allow_unused=True)
                per_step = [
                    torch.zeros(input_ids.size(0), device=input_ids.device) if g is None else g[-1].norm(dim=-1)
                    for g in grads
                ]  # T x (B,)
                norms = torch.stack(per_step, dim=1)  # (B, T)
            elif wrt == "embedding":
                module = embedding if embedding is not None else _token_embedding(model)
                captured: list[Tensor] = []

                def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> Tensor:
                    # Replace the output with a leaf that requires grad, so this works
                    # even when the embedding weights are frozen.
                    leaf = output.detach().requires_grad_(True)
                    captured.append(leaf)
                    return leaf

                handle = module.register_forward_hook(hook)
                try:
                    loss = model(input_ids, targets).loss * num_scored
                finally:
                    handle.remove()
                if len(captured) != 1:
                    raise ConfigError(
                        f"the embedding module ran {len(captured)} times in one forward; pass the token embedding"
                    )
                (grad,) = torch.autograd.grad(loss, captured[0])
                norms = grad.norm(dim=-1)  # (B, T)
            else:
                raise ConfigError(f"wrt must be 'hidden' or 'embedding', got {wrt!r}")
    finally:
        model.train(was_training)
    return norms.mean(0).detach().cpu().double().numpy()


def _token_embedding(model: nn.Module) -> nn.Module:
    module = getattr(model, "tok_emb", None)
    if isinstance(module, nn.Embedding):
        return module
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            return module
    raise ConfigError("the model has no nn.Embedding; pass embedding=<its token embedding module>")
