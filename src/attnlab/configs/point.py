"""Configs of the point-cloud classifiers (`attnlab.models.point`), torch-free.

  * `PointTransformerConfig`: a transformer encoder over a *set* of tokens (no positional
    order), with one of two tokenizers: every point a token ("point") or local patches as
    in Point-BERT / Point-MAE ("patch": farthest-point-sampled centres, k-nearest-neighbour
    groups, a shared mini-PointNet per group, the centre's position encoded by a learned MLP
    or Fourier features).
  * `PointNetConfig`: PointNet (Qi et al. 2017), a shared per-point MLP and a max-pool.
  * `PointMLPConfig`: an MLP on the points flattened in the order they are listed, the
    "wrong inductive bias" baseline (it is not permutation invariant).

`check_point_count(config, n)` says, before any training, whether clouds of `n` points are
enough for a config (the patch tokenizer needs at least max(num_patches, patch_size)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from attnlab.configs.base import Activation, BlockShape, PresetsMixin, check_at_least_one, check_dropout
from attnlab.errors import ConfigError, DataError

__all__ = [
    "PointTransformerConfig",
    "PointNetConfig",
    "PointMLPConfig",
    "POINT_TRANSFORMER_PRESETS",
    "POINTNET_PRESETS",
    "POINT_MLP_PRESETS",
    "check_point_count",
]

Tokenizer = Literal["patch", "point"]
CentrePosition = Literal["mlp", "fourier"]
Pool = Literal["cls", "mean", "max"]


def _check_widths(name: str, widths: tuple[int, ...], allow_empty: bool = False) -> None:
    if (not widths and not allow_empty) or any(int(w) < 1 for w in widths):
        need = "" if allow_empty else "at least one width, "
        raise ConfigError(f"model.{name} must be {need}each at least 1, got {widths}")


def _check_classes(num_classes: int) -> None:
    if num_classes < 2:
        raise ConfigError(f"model.num_classes must be at least 2, got {num_classes}")


@dataclass(frozen=True)
class PointTransformerConfig(BlockShape):
    """A set transformer over point or patch tokens (the field defaults are the `shapes` preset)."""

    num_classes: int = 8  # number of classes K
    tokenizer: Tokenizer = "patch"  # "patch": FPS + kNN groups + mini-PointNet; "point": every point a token
    num_patches: int = 32  # patch tokenizer: centres G chosen by farthest-point sampling
    patch_size: int = 16  # patch tokenizer: neighbours k in each centre's group (the centre included)
    group_dims: tuple[int, ...] = (64, 128)  # widths of the shared mini-PointNet (per-point MLP, then max-pool)
    position: CentrePosition = "mlp"  # patch tokenizer: centre xyz encoded by a learned MLP or Fourier features
    fourier_bands: int = 8  # position = "fourier": frequencies pi * 2^0 .. pi * 2^(bands-1) per axis
    embed_dim: int = 64  # width E of the tokens
    num_layers: int = 3  # transformer blocks
    num_heads: int = 4  # attention heads per block; must divide embed_dim
    ff_dim: int | None = 128  # hidden width of the feed-forward layer; None = 4 * embed_dim
    dropout: float = 0.0  # dropout on tokens, attention weights and residual branches
    pool: Pool = "cls"  # read the class from a CLS token, or the mean / max of the tokens
    activation: Activation = "gelu"  # feed-forward non-linearity
    norm_first: bool = True  # pre-norm blocks
    layer_norm_eps: float = 1e-6  # epsilon inside LayerNorm
    init_std: float = 0.02  # std of the CLS token's initialisation

    bias: ClassVar[bool] = True  # not a field: linear layers and LayerNorms always have biases
    preset_kind: ClassVar[str] = "point transformer"

    def __post_init__(self) -> None:
        check_at_least_one(self, ("num_patches", "patch_size", "fourier_bands", "embed_dim", "num_layers", "num_heads"))
        _check_classes(self.num_classes)
        if self.tokenizer not in ("patch", "point"):
            raise ConfigError(f"model.tokenizer must be 'patch' or 'point', got {self.tokenizer!r}")
        if self.position not in ("mlp", "fourier"):
            raise ConfigError(f"model.position must be 'mlp' or 'fourier', got {self.position!r}")
        if self.pool not in ("cls", "mean", "max"):
            raise ConfigError(f"model.pool must be 'cls', 'mean' or 'max', got {self.pool!r}")
        _check_widths("group_dims", self.group_dims)
        self.check_block_fields(ff_dim_none_means="4 * embed_dim")

    @property
    def min_points(self) -> int:
        """The fewest real points a cloud needs (patch: a group of k and G distinct centres)."""
        return max(self.num_patches, self.patch_size) if self.tokenizer == "patch" else 1


@dataclass(frozen=True)
class PointNetConfig(PresetsMixin):
    """PointNet without its T-Nets ("vanilla" in Qi et al. 2017, Table 2): shared MLP, max-pool, MLP head."""

    num_classes: int = 8  # number of classes K
    point_dims: tuple[int, ...] = (
        64,
        128,
        256,
    )  # widths of the shared per-point MLP (the paper: 64, 64, 64, 128, 1024)
    head_dims: tuple[int, ...] = (128,)  # hidden widths of the classifier on the pooled vector (the paper: 512, 256)
    dropout: float = 0.1  # dropout before the head's last layer (the paper: 0.3)

    preset_kind: ClassVar[str] = "PointNet"

    def __post_init__(self) -> None:
        _check_classes(self.num_classes)
        _check_widths("point_dims", self.point_dims)
        _check_widths("head_dims", self.head_dims, allow_empty=True)
        check_dropout(self.dropout)

    @property
    def min_points(self) -> int:
        return 1


@dataclass(frozen=True)
class PointMLPConfig(PresetsMixin):
    """An MLP on `num_points` xyz triples flattened in the order given (shorter clouds are zero-padded)."""

    num_classes: int = 8  # number of classes K
    num_points: int = 256  # P: the input is P * 3 numbers; clouds may be shorter, never longer
    hidden_dims: tuple[int, ...] = (256, 128)  # widths of the hidden layers
    dropout: float = 0.1  # dropout after each hidden layer

    preset_kind: ClassVar[str] = "point MLP"

    def __post_init__(self) -> None:
        _check_classes(self.num_classes)
        check_at_least_one(self, ("num_points",))
        _check_widths("hidden_dims", self.hidden_dims, allow_empty=True)
        check_dropout(self.dropout)

    @property
    def min_points(self) -> int:
        return 1


POINT_TRANSFORMER_PRESETS: dict[str, dict[str, Any]] = {
    # The lab's defaults for 192-256 point clouds: 32 patches of 16 points, 3 layers of width 64.
    "shapes": dict(),
    # Every point a token (256 tokens: about 60x the attention work of the 33 patch tokens).
    "shapes-point": dict(tokenizer="point", embed_dim=64, num_layers=2),
    # Point-MAE's ModelNet setting: 64 patches of 32 points of 1,024 (width 384 in the paper; 128 here).
    "modelnet": dict(num_patches=64, patch_size=32, embed_dim=128, num_layers=4, num_heads=4, ff_dim=256),
    # Unit tests and --quick.
    "nano": dict(num_patches=8, patch_size=8, group_dims=(16,), embed_dim=16, num_layers=1, num_heads=2, ff_dim=32),
}
PointTransformerConfig.presets = POINT_TRANSFORMER_PRESETS

POINTNET_PRESETS: dict[str, dict[str, Any]] = {
    "shapes": dict(),
    "paper": dict(point_dims=(64, 64, 64, 128, 1024), head_dims=(512, 256), dropout=0.3),
    "nano": dict(point_dims=(16, 32), head_dims=(), dropout=0.0),
}
PointNetConfig.presets = POINTNET_PRESETS

POINT_MLP_PRESETS: dict[str, dict[str, Any]] = {
    "shapes": dict(),
    "nano": dict(hidden_dims=(32,), dropout=0.0),
}
PointMLPConfig.presets = POINT_MLP_PRESETS


def check_point_count(config: Any, num_points: int, *, where: str = "the clouds") -> None:
    """Refuse clouds too small for `config` (any of the three configs) with one message.

    Args:
        config: a point model config.
        num_points: the fewest real points of any cloud.
        where: what the clouds are, for the message.
    Raises:
        DataError: fewer points than the config needs.
    """
    need = config.min_points
    if num_points >= need:
        return
    if getattr(config, "tokenizer", None) == "patch":
        raise DataError(
            f"{where} have as few as {num_points} points, but patches of {config.patch_size} points around "
            f"{config.num_patches} centres need at least {need}; lower model.num_patches / model.patch_size "
            "or use clouds with more points"
        )
    raise DataError(f"{where} have as few as {num_points} points; every cloud needs at least {need}")
