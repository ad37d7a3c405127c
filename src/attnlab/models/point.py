"""Point-cloud classifiers: tokenizing a set of 3-D points for a transformer, and two baselines.

A point cloud is a set: listing its points in another order must not change the answer.
Three models, each `forward(points, targets=None, *, mask=None)` on padded batches
(points (B, P, 3), mask (B, P) True = real point, as in `attnlab.data.points`):

`PointTransformer` (config `PointTransformerConfig`), a transformer encoder with *no*
positional order (no position table: attention treats its input as a set), with one of
two tokenizers:

  "point": every point a token, a linear embedding of its xyz         (B, P, E)
  "patch": local patches as in Point-BERT (Yu et al. 2022) and Point-MAE (Pang et al. 2022):
      points (B, P, 3)
        -> farthest-point sampling of G centres                        (B, G) indices
        -> k nearest neighbours of each centre (its group)             (B, G, k) indices
        -> neighbours relative to their centre                         (B, G, k, 3)
        -> shared mini-PointNet: per-point MLP, max over the group     (B, G, E)
        -> + the centre's position: a learned MLP of xyz, or Fourier   (B, G, E)
           features [sin, cos](pi 2^j x) followed by a linear layer
  then [CLS] + tokens -> num_layers x TransformerBlock -> LayerNorm -> pool -> linear -> (B, K).

Every step is permutation invariant: farthest-point sampling starts at the point farthest
from the centroid (not "point 0"), a kNN group is a set, max-pooling ignores order, and
the blocks see no positions; the tests check that a permuted cloud gives the same logits.

`PointNet` (Qi et al. 2017, "PointNet: Deep Learning on Point Sets for 3D Classification
and Segmentation"), without the T-Nets: the same MLP on every point, a max-pool over the
points (a symmetric function), an MLP head. The paper's batch norm is left out so that a
padded batch gives every cloud the result it has alone.

`PointMLP`: the points flattened in the order given, (B, P * 3), into an MLP: the "wrong
inductive bias" baseline. Its first layer gives each list position its own weights, so
the same cloud listed in another order is, to it, another input.

Padding never changes a cloud's result: padded points are never sampled as centres,
never neighbours, masked out of attention (point tokens) and out of every pool.

Notation: B batch, P points (padded), G centres (patches), k neighbours per group,
E embed_dim, T tokens (G or P, plus CLS), H heads, K classes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnlab.configs.point import (
    POINT_MLP_PRESETS,
    POINT_TRANSFORMER_PRESETS,
    POINTNET_PRESETS,
    PointMLPConfig,
    PointNetConfig,
    PointTransformerConfig,
    check_point_count,
)
from attnlab.errors import ConfigError, DataError
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput, cross_entropy_loss
from attnlab.nn.attention import padding_mask
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import layer_norm
from attnlab.nn.stack import block_stack, init_weights, run_blocks, xavier_linear

__all__ = [
    "PointTransformer",
    "PointTransformerConfig",
    "PointNet",
    "PointNetConfig",
    "PointMLP",
    "PointMLPConfig",
    "POINT_TRANSFORMER_PRESETS",
    "POINTNET_PRESETS",
    "POINT_MLP_PRESETS",
    "farthest_point_sample",
    "knn_groups",
    "gather_points",
    "FourierFeatures",
    "PatchTokenizer",
    "PointTokenizer",
    "build_point_model",
]


# ---------------------------------------------------------------------------
# Sampling and grouping
# ---------------------------------------------------------------------------


def _check_inputs(points: Tensor, mask: Tensor | None) -> Tensor:
    if points.dim() != 3 or points.size(-1) != 3:
        raise DataError(f"points must be (batch, points, 3) xyz, got shape {tuple(points.shape)}")
    if mask is None:
        return torch.ones(points.shape[:2], dtype=torch.bool, device=points.device)
    if mask.shape != points.shape[:2]:
        raise DataError(f"mask must be (batch, points) = {tuple(points.shape[:2])}, got {tuple(mask.shape)}")
    return mask.bool()


def gather_points(points: Tensor, index: Tensor) -> Tensor:
    """points (B, P, C) at index (B, ...) -> (B, ..., C)."""
    B = points.size(0)
    flat = index.reshape(B, -1)  # (B, M)
    picked = torch.gather(points, 1, flat[..., None].expand(-1, -1, points.size(-1)))  # (B, M, C)
    return picked.reshape(*index.shape, points.size(-1))


@torch.no_grad()
def farthest_point_sample(points: Tensor, num_samples: int, mask: Tensor | None = None) -> Tensor:
    """Farthest-point sampling (Eldar et al. 1997; PointNet++): `num_samples` well spread points.

    The first pick is the real point farthest from the cloud's centroid (so the result does
    not depend on how the points are listed); each next pick is the real point farthest from
    all picks so far.

    Args:
        points: (B, P, 3).
        num_samples: G, at most the number of real points of every cloud.
        mask: (B, P) True = real point; None = all real.
    Returns:
        (B, G) int64 indices into the P points, in the order they were picked.
    """
    mask = _check_inputs(points, mask)
    B, P, _ = points.shape
    weights = mask.to(points.dtype)[..., None]
    centroid = (points * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1)  # (B, 1, 3)
    far = torch.full((B, P), -math.inf, dtype=points.dtype, device=points.device)
    distance = ((points - centroid) ** 2).sum(-1).masked_fill(~mask, -math.inf)  # (B, P)
    chosen = torch.empty(B, num_samples, dtype=torch.long, device=points.device)
    nearest = torch.full((B, P), math.inf, dtype=points.dtype, device=points.device)
    for i in range(num_samples):
        pick = distance.argmax(1)  # (B,)
        chosen[:, i] = pick
        new = ((points - gather_points(points, pick[:, None])) ** 2).sum(-1)  # (B, P) to the new pick
        nearest = torch.minimum(nearest, new)
        distance = torch.where(mask, nearest, far)
    return chosen


@torch.no_grad()
def knn_groups(points: Tensor, centres: Tensor, k: int, mask: Tensor | None = None) -> Tensor:
    """The `k` real points nearest each centre (the centre itself first when it is one of the points).

    Args:
        points: (B, P, 3).
        centres: (B, G, 3).
        k: neighbours per centre, at most the number of real points.
        mask: (B, P) True = real point; None = all real.
    Returns:
        (B, G, k) int64 indices into the P points, nearest first.
    """
    mask = _check_inputs(points, mask)
    distance = ((centres[:, :, None, :] - points[:, None, :, :]) ** 2).sum(-1)  # (B, G, P)
    distance = distance.masked_fill(~mask[:, None, :], math.inf)
    return distance.topk(k, dim=-1, largest=False, sorted=True).indices


# ---------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------


class FourierFeatures(nn.Module):
    """xyz -> [xyz, sin(pi 2^j x), cos(pi 2^j x)] for j < bands and each axis (Tancik et al. 2020), then linear.

    Fixed frequencies, a learned projection to `embed_dim`: the transformer's sinusoidal
    positions, in 3-D and continuous.
    """

    def __init__(self, bands: int, embed_dim: int):
        super().__init__()
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(bands, dtype=torch.float32), False)
        self.proj = nn.Linear(3 + 6 * bands, embed_dim)

    def forward(self, xyz: Tensor) -> Tensor:
        """(..., 3) -> (..., E)."""
        angles = xyz[..., None] * self.frequencies.to(xyz.dtype)  # (..., 3, bands)
        feats = torch.cat([xyz, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)  # (..., 3 + 6 bands)
        return self.proj(feats)


def _mlp(widths: list[int], activation: type[nn.Module] = nn.ReLU, last_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(widths) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class PointTokenizer(nn.Module):
    """Every point a token: a linear embedding of its xyz (the position *is* the content)."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.embed = nn.Linear(3, embed_dim)

    def forward(self, points: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(B, P, 3), (B, P) -> tokens (B, P, E), their mask (B, P), nothing extra."""
        return self.embed(points), mask, {}


class PatchTokenizer(nn.Module):
    """Point-BERT / Point-MAE patches: FPS centres, kNN groups, a shared mini-PointNet, the centre's position.

    Args:
        num_patches: G centres.
        patch_size: k points per group.
        group_dims: widths of the mini-PointNet's per-point MLP (its output is projected to E).
        embed_dim: E.
        position: "mlp" (Linear-GELU-Linear of the centre's xyz, as Point-MAE) or "fourier".
        fourier_bands: frequencies per axis for "fourier".
    """

    def __init__(
        self,
        num_patches: int,
        patch_size: int,
        group_dims: tuple[int, ...],
        embed_dim: int,
        position: str = "mlp",
        fourier_bands: int = 8,
    ):
        super().__init__()
        self.num_patches, self.patch_size = num_patches, patch_size
        self.group_mlp = _mlp([3, *group_dims])  # the same MLP on every point of every group
        self.group_proj = nn.Linear(group_dims[-1], embed_dim)  # after the max-pool
        if position == "mlp":
            self.position: nn.Module = nn.Sequential(
                nn.Linear(3, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
            )
        else:
            self.position = FourierFeatures(fourier_bands, embed_dim)

    def group(self, points: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, G) centre indices and (B, G, k) group indices of each cloud."""
        centres = farthest_point_sample(points, self.num_patches, mask)
        groups = knn_groups(points, gather_points(points, centres), self.patch_size, mask)
        return centres, groups

    def forward(self, points: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(B, P, 3), (B, P) -> tokens (B, G, E), an all-True mask (B, G), and the centre / group indices."""
        centre_index, group_index = self.group(points, mask)
        centres = gather_points(points, centre_index)  # (B, G, 3)
        neighbours = gather_points(points, group_index) - centres[:, :, None, :]  # (B, G, k, 3) relative to the centre
        features = self.group_mlp(neighbours).amax(dim=2)  # (B, G, D): max over the group, a set function
        tokens = self.group_proj(features) + self.position(centres)  # (B, G, E)
        token_mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return tokens, token_mask, {"centres": centre_index, "groups": group_index}


def _masked_pool(x: Tensor, mask: Tensor, how: str) -> Tensor:
    """(B, T, E) tokens, (B, T) mask -> (B, E) mean or max over the real tokens."""
    if how == "max":
        return x.masked_fill(~mask[..., None], -math.inf).amax(dim=1)
    weights = mask.to(x.dtype)[..., None]
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1)


def _check_counts(config: object, mask: Tensor) -> None:
    fewest = int(mask.sum(1).min()) if mask.numel() else 0
    check_point_count(config, fewest, where="the clouds in this batch")


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class PointTransformer(HookedMixin, CheckpointMixin, nn.Module):
    """A transformer encoder over a set of point or patch tokens (no positional order).

    Args:
        config: a `PointTransformerConfig` (e.g. `PointTransformerConfig.from_name("shapes")`).
    """

    model_type = "point_transformer"
    config_class = PointTransformerConfig

    def __init__(self, config: PointTransformerConfig):
        super().__init__()
        self.config = c = config
        if c.tokenizer == "patch":
            self.tokenizer: nn.Module = PatchTokenizer(
                c.num_patches, c.patch_size, c.group_dims, c.embed_dim, c.position, c.fourier_bands
            )
        else:
            self.tokenizer = PointTokenizer(c.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.drop = nn.Dropout(c.dropout)
        self.blocks = block_stack(c)  # bidirectional, no positions: a set model
        self.norm = layer_norm(c.embed_dim, c.layer_norm_eps) if c.norm_first else nn.Identity()
        self.head = nn.Linear(c.embed_dim, c.num_classes)
        # hook points (attnlab.interp): CLS + point/patch tokens (the stream in), the final norm's output
        self.hook_embed, self.hook_final_norm = HookPoint(), HookPoint()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As the ViT: Xavier-uniform linear layers, zero biases, N(0, init_std) CLS token, a zero head."""
        std = self.config.init_std
        init_weights(self, std, linear=xavier_linear)
        nn.init.trunc_normal_(self.cls_token, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        points: Tensor,
        targets: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> ModelOutput:
        """Class logits of each cloud.

        Args:
            points: (B, P, 3) xyz.
            targets: (B,) class ids; -100 entries are not scored.
            mask: (B, P) True = real point; None = every point is real.
            output_attentions: each layer's (B, H, T, T) attention (token 0 is CLS, then the
                G patch tokens in the order their centres were sampled, or the P points).
            output_hidden_states: the token states before each block and after the final norm.
        Returns:
            `ModelOutput` with logits (B, K), the loss when targets are given, and extras
            "features" (B, E) and, for patches, "centres" (B, G) and "groups" (B, G, k) point indices.
        Raises:
            DataError: clouds with fewer real points than the patch settings need.
        """
        mask = _check_inputs(points, mask)
        _check_counts(self.config, mask)
        tokens, token_mask, extras = self.tokenizer(points, mask)  # (B, T', E), (B, T')
        B = tokens.size(0)
        x = torch.cat([self.cls_token.expand(B, -1, -1).to(tokens.dtype), tokens], dim=1)  # (B, T, E)
        keep = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=x.device), token_mask], dim=1)  # (B, T)
        attn_mask = None if bool(keep.all()) else padding_mask(keep)  # (B, 1, 1, T): padded points are never read
        if self.hooked:
            x = self.hook_embed(x)
        out = run_blocks(
            self.blocks,
            self.drop(x),
            mask=attn_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        x = self.norm(out.hidden)
        if self.hooked:
            x = self.hook_final_norm(x)
        if output_hidden_states:
            out.hidden_states[-1] = x
        pool = self.config.pool
        features = x[:, 0] if pool == "cls" else _masked_pool(x[:, 1:], token_mask, pool)  # (B, E)
        logits = self.head(features)  # (B, K)
        return ModelOutput(
            logits=logits,
            loss=cross_entropy_loss(logits, targets),
            hidden_states=tuple(out.hidden_states) if output_hidden_states else None,
            attentions=tuple(out.attentions) if output_attentions else None,
            extras={"features": features, **extras},
        )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class PointNet(CheckpointMixin, nn.Module):
    """PointNet (Qi et al. 2017) without T-Nets: shared per-point MLP -> max-pool -> MLP head.

    Args:
        config: a `PointNetConfig`.
    """

    model_type = "pointnet"
    config_class = PointNetConfig

    def __init__(self, config: PointNetConfig):
        super().__init__()
        self.config = c = config
        self.point_mlp = _mlp([3, *c.point_dims])  # h(x): the same on every point
        head_widths = [c.point_dims[-1], *c.head_dims]
        self.head = nn.Sequential(
            _mlp(head_widths) if c.head_dims else nn.Identity(),
            nn.Dropout(c.dropout),
            nn.Linear(head_widths[-1], c.num_classes),
        )

    def forward(self, points: Tensor, targets: Tensor | None = None, *, mask: Tensor | None = None) -> ModelOutput:
        """(B, P, 3) points, (B, P) mask -> `ModelOutput` with logits (B, K) and extras "features" (B, D)
        and "critical" (B, D), the index of the point that wins each feature's max-pool."""
        mask = _check_inputs(points, mask)
        _check_counts(self.config, mask)
        h = self.point_mlp(points)  # (B, P, D)
        h = h.masked_fill(~mask[..., None], -math.inf)
        features, critical = h.max(dim=1)  # (B, D): g = max over the points, a symmetric function
        logits = self.head(features)
        return ModelOutput(
            logits=logits, loss=cross_entropy_loss(logits, targets), extras={"features": features, "critical": critical}
        )


class PointMLP(CheckpointMixin, nn.Module):
    """An MLP on the flattened, ordered points: the baseline that ignores that a cloud is a set.

    Args:
        config: a `PointMLPConfig`.
    """

    model_type = "point_mlp"
    config_class = PointMLPConfig

    def __init__(self, config: PointMLPConfig):
        super().__init__()
        self.config = c = config
        widths = [3 * c.num_points, *c.hidden_dims]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(c.dropout)]
        layers.append(nn.Linear(widths[-1], c.num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, points: Tensor, targets: Tensor | None = None, *, mask: Tensor | None = None) -> ModelOutput:
        """(B, P, 3) points with P <= num_points (padding is zeroed) -> `ModelOutput` with logits (B, K)."""
        mask = _check_inputs(points, mask)
        B, P, _ = points.shape
        if P > self.config.num_points:
            raise DataError(
                f"the clouds are padded to {P} points, more than this MLP's model.num_points "
                f"({self.config.num_points}); build it with model.num_points={P} or more"
            )
        x = points * mask[..., None].to(points.dtype)  # padding reads as zeros, wherever it is
        x = nn.functional.pad(x, (0, 0, 0, self.config.num_points - P))  # (B, num_points, 3)
        logits = self.net(x.reshape(B, -1))  # position i of the list has its own weights
        return ModelOutput(logits=logits, loss=cross_entropy_loss(logits, targets))


def build_point_model(kind: str, num_classes: int, *, preset: str = "shapes", num_points: int = 256) -> nn.Module:
    """One of the lab's models from a preset: "patch", "point" (transformers), "pointnet" or "mlp".

    Args:
        kind: the model's short name.
        num_classes: K.
        preset: the config preset ("shapes", "nano", ...; "point" maps "shapes" to "shapes-point").
        num_points: the MLP's input length (the data's padded length).
    """
    if kind in ("patch", "point"):
        name = "shapes-point" if kind == "point" and preset == "shapes" else preset
        config = PointTransformerConfig.from_name(name, num_classes=num_classes, tokenizer=kind)
        return PointTransformer(config)
    if kind == "pointnet":
        return PointNet(PointNetConfig.from_name(preset, num_classes=num_classes))
    if kind == "mlp":
        return PointMLP(PointMLPConfig.from_name(preset, num_classes=num_classes, num_points=num_points))
    raise ConfigError(f"unknown point model {kind!r}; choose patch, point, pointnet or mlp")
