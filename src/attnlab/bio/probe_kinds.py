"""Probe kinds: `ProbeConfig` and the registry of kinds, each made by `build(input_dim, num_outputs, task, config)`.

Built-in kinds are listed in `LAZY_PROBE_KINDS` with the module that registers them
(`attnlab.bio.probe_modules`: linear, mlp, attention; `attnlab.bio.transformer_probe`:
transformer, attention-mlp); `probe_spec` imports that module the first time its kind is
asked for, so this module needs neither PyTorch nor the probe modules to name the kinds.
New kinds plug in with `register_probe`; see its docstring for the module contract.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attnlab.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

# kind -> the module that registers it (imported the first time the kind is needed), in the
# order the kinds are listed.
LAZY_PROBE_KINDS: dict[str, str] = {
    "linear": "attnlab.bio.probe_modules",
    "mlp": "attnlab.bio.probe_modules",
    "attention": "attnlab.bio.probe_modules",
    "transformer": "attnlab.bio.transformer_probe",
    "attention-mlp": "attnlab.bio.transformer_probe",
}


@dataclass(frozen=True)
class ProbeConfig:
    """Hyper-parameters of probe training (shared by all kinds; each uses what applies)."""

    hidden_dim: int = 256  # MLP hidden width
    num_hidden_layers: int = 1  # MLP hidden layers
    dropout: float = 0.1  # dropout in the MLP / before the attention probe's head
    learning_rate: float | None = None  # Adam step size; None = 1e-2 for linear probes, 1e-3 for the others
    weight_decay: float = 1e-4  # L2 penalty on the weights (the logistic regression's regularisation)
    batch_size: int = 64  # items (sequences, or residues for per-residue linear/mlp) per step
    max_epochs: int = 200  # upper bound on passes over the training data
    patience: int = 10  # stop after this many epochs without a lower validation loss
    standardize: bool = True  # z-score features with the training mean/std (regression targets too)
    valid_fraction: float = 0.1  # share of the training data held out when no validation data is given
    ridge_alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)  # ridge penalties tried
    max_train_residues: int | None = None  # residue task, linear/mlp: subsample this many training residues
    device: str = "cpu"  # cpu, cuda, mps or auto
    # CPU threads while training; probes multiply small matrices, where one thread is much
    # faster than several that wait for each other (especially on a busy machine). None = PyTorch's setting.
    num_threads: int | None = 1
    # The transformer probe (kind "transformer", `attnlab.bio.transformer_probe`):
    transformer_dim: int = 128  # width the residue vectors are projected to
    transformer_layers: int = 2  # pre-norm blocks with rotary positions
    transformer_heads: int = 4  # attention heads; must divide transformer_dim
    transformer_pool: str = "cls"  # sequence tasks: cls (a learned token), attn, mean or max over residues
    # Residue-input probes on the residue task: train on random windows of at most this many
    # residues (labels cut with them; evaluation always sees whole sequences). None = whole sequences.
    crop_length: int | None = None
    progress: bool = False  # a tqdm bar over the epochs (validation loss as it goes)

    def __post_init__(self) -> None:
        for name in ("hidden_dim", "num_hidden_layers", "batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"probe.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"probe.dropout must be in [0, 1), got {self.dropout}")
        if (self.learning_rate is not None and self.learning_rate <= 0) or self.weight_decay < 0:
            raise ConfigError("probe.learning_rate must be positive and probe.weight_decay non-negative")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"probe.valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if not self.ridge_alphas or any(a <= 0 for a in self.ridge_alphas):
            raise ConfigError("probe.ridge_alphas must be a non-empty list of positive numbers")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError("probe.num_threads must be at least 1 (or null for PyTorch's default)")
        if self.max_train_residues is not None and self.max_train_residues < 1:
            raise ConfigError("probe.max_train_residues must be at least 1 (or null for all)")
        for name in ("transformer_dim", "transformer_layers", "transformer_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"probe.{name} must be at least 1, got {getattr(self, name)}")
        if self.transformer_dim % self.transformer_heads or (self.transformer_dim // self.transformer_heads) % 2:
            raise ConfigError(
                f"probe.transformer_dim ({self.transformer_dim}) must be divisible by probe.transformer_heads "
                f"({self.transformer_heads}) with an even head size (rotary positions)"
            )
        if self.transformer_pool not in ("cls", "attn", "mean", "max"):
            raise ConfigError(f"probe.transformer_pool must be cls, attn, mean or max, got {self.transformer_pool!r}")
        if self.crop_length is not None and self.crop_length < 2:
            raise ConfigError("probe.crop_length must be at least 2 (or null for whole sequences)")


BuildFn = Callable[[int, int, str, ProbeConfig], "nn.Module"]


@dataclass(frozen=True)
class ProbeSpec:
    """A registered probe kind."""

    kind: str
    takes_residues: bool  # True: the module reads (B, T, C) + mask; False: (B, C) vectors
    build: BuildFn  # (input_dim C, num_outputs K, task, config) -> nn.Module
    description: str


_PROBES: dict[str, ProbeSpec] = {}


def register_probe(kind: str, takes_residues: bool, description: str = "") -> Callable[[BuildFn], BuildFn]:
    """Decorator registering a probe builder `build(input_dim, num_outputs, task, config) -> nn.Module`.

    Module contract:
        takes_residues=False: `forward(x)` with x (B, C) -> (B, K). For the residue task
            it is applied to each residue's vector (flattened).
        takes_residues=True: `forward(x, mask)` with x (B, T, C) and mask (B, T) bool
            (True = real residue) -> (B, K) for per-sequence tasks, (B, T, K) for the
            residue task. The builder raises ConfigError for tasks it does not support.
    K is 1 for binary and regression, the number of classes otherwise.
    """

    def wrap(build: BuildFn) -> BuildFn:
        _PROBES[kind] = ProbeSpec(kind, takes_residues, build, description)
        return build

    return wrap


def probe_kinds() -> list[str]:
    """Names of the probe kinds: the built-in ones (`LAZY_PROBE_KINDS`, not imported) and those registered."""
    return list(dict.fromkeys([*LAZY_PROBE_KINDS, *_PROBES]))


def probe_spec(kind: str) -> ProbeSpec:
    """The registered spec of `kind` (ConfigError naming the choices otherwise)."""
    if kind not in _PROBES and kind in LAZY_PROBE_KINDS:
        importlib.import_module(LAZY_PROBE_KINDS[kind])  # its builders register themselves
    if kind not in _PROBES:
        raise ConfigError(f"unknown probe kind {kind!r}; choose one of: {', '.join(probe_kinds())}")
    return _PROBES[kind]
