"""ViT: the Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

Reads top to bottom:
    images (B, C, H, W)
      -> cut into non-overlapping P x P patches, each flattened       (B, N, C*P*P)
      -> linear patch embedding                                       (B, N, E)
      -> prepend a learned [CLS] token                                (B, N+1, E)
      -> + learned position embeddings (one per patch + one for CLS)  (B, N+1, E)
      -> num_layers x TransformerBlock (bidirectional self-attention) (B, N+1, E)
      -> final LayerNorm (pre-norm models)                            (B, N+1, E)
      -> classification head on the CLS token (or the patch mean)     (B, K) logits
With N = (H/P) * (W/P) patches: a 28 x 28 digit cut into 7 x 7 patches is a
"sentence" of 16 "words" (plus CLS). Nothing in the architecture knows that patches
next to each other are neighbours: the position embeddings must learn it, which is
why a ViT needs more data (or augmentation) than a ConvNet (section 3.1 of the paper).

A convolutional stem (`conv_stem`, off by default) puts a few 3 x 3 convolutions
(BatchNorm, ReLU, same size) in front of the patch projection, which then cuts the
stem's feature map instead of the pixels: the "hybrid architecture" of the paper's
section 3.1, and the early convolutions of Xiao et al. 2021 ("Early Convolutions Help
Transformers See Better"), a standard remedy for a ViT trained on little data.

Looking inside:
  * `forward(..., output_attentions=True)` returns each layer's (B, H, N+1, N+1)
    attention weights; row 0 is what the CLS token reads from every patch.
  * `attention_rollout` (Abnar & Zuidema 2020, "Quantifying Attention Flow in
    Transformers") multiplies the layers' head-averaged attention, each mixed with the
    identity for the residual connection, to estimate how much each input patch
    flows into each output token; `patch_attention_map` turns the CLS row of it (or of
    the last layer's attention) into an (H/P) x (W/P) map to lay over the image.
  * `PatchEmbedding.patchify` / `unpatchify` cut an image into patches and put it back
    together exactly, so patches can be shown as the model sees them.

Notation: B batch, C channels, H height, W width, P patch_size, G grid size (H / P),
N patches (G * G), T tokens (N + 1 with CLS), E embed_dim, K classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.configs.base import IGNORE_INDEX, Activation, BlockShape, check_at_least_one
from attnlab.errors import ConfigError
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import layer_norm
from attnlab.nn.stack import block_stack, init_weights, xavier_linear

__all__ = [
    "ViT",
    "ViTConfig",
    "VIT_PRESETS",
    "PatchEmbedding",
    "build_conv_stem",
    "attention_rollout",
    "patch_attention_map",
    "IGNORE_INDEX",
]

Pool = Literal["cls", "mean"]
MAX_STEM_LAYERS = 16  # conv_stem: at most this many layers
MAX_STEM_CHANNELS = 4096  # ... of at most this many channels each


@dataclass(frozen=True)
class ViTConfig(BlockShape):
    """Hyper-parameters of a Vision Transformer classifier.

    Not a `TransformerConfig` (no vocabulary, positions or bias choice); the block fields,
    their checks, `hidden_dim`, `block_kwargs()` and `from_name` are shared (`BlockShape`).
    """

    image_size: int = 28  # height = width of the input images in pixels (28 MNIST, 8 digits)
    patch_size: int = 7  # side P of the square, non-overlapping patches; must divide image_size
    in_channels: int = 1  # colour channels of the input (1 for grey)
    num_classes: int = 10  # number of classes K
    embed_dim: int = 64  # width E of the residual stream (the patch "word" vectors)
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads per block; must divide embed_dim
    ff_dim: int | None = 128  # hidden width of the feed-forward layer; None = 4 * embed_dim
    dropout: float = 0.0  # dropout on embeddings, attention weights and residual branches
    pool: Pool = "cls"  # classify from the CLS token ("cls") or the mean of the patch tokens ("mean")
    activation: Activation = "gelu"  # feed-forward non-linearity
    norm_first: bool = True  # pre-norm blocks (as in the ViT paper) or post-norm
    layer_norm_eps: float = 1e-6  # epsilon inside LayerNorm (the paper's code uses 1e-6)
    init_std: float = 0.02  # std of the (truncated) normal initialisation of position embeddings and CLS
    conv_stem: tuple[int, ...] = ()  # channels of 3x3 conv layers (+ BatchNorm, ReLU) before the patches; () = none

    bias: ClassVar[bool] = True  # not a field: the ViT's linear layers and LayerNorms always have biases
    preset_kind = "ViT"

    def __post_init__(self) -> None:
        check_at_least_one(self, ("image_size", "patch_size", "in_channels", "embed_dim", "num_layers", "num_heads"))
        if self.num_classes < 2:
            raise ConfigError(f"model.num_classes must be at least 2, got {self.num_classes}")
        if self.image_size % self.patch_size:
            # (listing the divisors walks every number up to image_size: only for image-like sizes)
            divisors = (
                [p for p in range(1, self.image_size + 1) if self.image_size % p == 0]
                if self.image_size <= 100_000
                else []
            )
            choose = f"; choose one of {', '.join(map(str, divisors))}" if divisors else ""
            raise ConfigError(
                f"model.patch_size ({self.patch_size}) must divide model.image_size ({self.image_size}) so the "
                f"patches tile the image{choose}"
            )
        self.check_block_fields(ff_dim_none_means="4 * embed_dim")
        if self.pool not in ("cls", "mean"):
            raise ConfigError(f"model.pool must be 'cls' or 'mean', got {self.pool!r}")
        object.__setattr__(self, "conv_stem", tuple(self.conv_stem))
        if len(self.conv_stem) > MAX_STEM_LAYERS or any(
            not isinstance(c, int) or isinstance(c, bool) or not 1 <= c <= MAX_STEM_CHANNELS for c in self.conv_stem
        ):
            raise ConfigError(
                f"model.conv_stem lists the channels of at most {MAX_STEM_LAYERS} conv layers, each 1 to "
                f"{MAX_STEM_CHANNELS:,} (e.g. 16,16; empty for none), got {self.conv_stem!r}"
            )

    @property
    def patch_channels(self) -> int:
        """Channels of what the patches are cut from: the image's, or the stem's last layer's."""
        return self.conv_stem[-1] if self.conv_stem else self.in_channels

    @property
    def grid_size(self) -> int:
        """Patches per side G = image_size / patch_size."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Number of patches N = G * G."""
        return self.grid_size**2

    @property
    def seq_len(self) -> int:
        """Tokens the transformer sees T = N + 1 (the CLS token)."""
        return self.num_patches + 1


VIT_PRESETS: dict[str, dict[str, Any]] = {
    # The lab's MNIST ViT: 7 x 7 patches (16 + CLS tokens), 4 layers, 4 heads, width 64:
    # 139,018 parameters, the size of the MLP and ConvNet baselines. Trains to about 97%
    # on 8,000 digits in 25 epochs, about a minute on 2 CPU cores.
    "mnist": dict(image_size=28, patch_size=7, embed_dim=64, num_layers=4, num_heads=4, ff_dim=128),
    # 4 x 4 patches (49 + CLS tokens): finer attention maps, about 3x the compute per image.
    # (The parameter count is the same: the patch projection grows by as much as the
    # position table shrinks, (49 - 16) * 64 = (50 - 17) * 64.)
    "mnist-p4": dict(image_size=28, patch_size=4, embed_dim=64, num_layers=4, num_heads=4, ff_dim=128),
    # scikit-learn's 8x8 digits: 2 x 2 patches (16 + CLS tokens).
    "digits": dict(image_size=8, patch_size=2, embed_dim=32, num_layers=2, num_heads=2, ff_dim=64),
    # Unit tests.
    "tiny": dict(image_size=28, patch_size=7, embed_dim=16, num_layers=2, num_heads=2, ff_dim=32),
}
ViTConfig.presets = VIT_PRESETS


class PatchEmbedding(nn.Module):
    """Cut images into non-overlapping patches and project each to an embedding.

    `patchify` is a pure reshape (no weights): patch n = (row n // G, column n % G),
    read left to right, top to bottom, and each patch is flattened channel-major,
    (C, P, P) -> C*P*P, the layout of a `Conv2d(C, E, P, stride=P)` weight. The linear
    projection of a flattened patch is therefore exactly that convolution (the tests
    check it), written as a matrix product so the "patches are words" view stays visible.

    Args:
        image_size: H = W in pixels.
        patch_size: P; must divide image_size.
        in_channels: C.
        embed_dim: E.
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, embed_dim: int):
        super().__init__()
        if image_size % patch_size:
            raise ConfigError(f"patch_size ({patch_size}) must divide image_size ({image_size})")
        self.image_size = image_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.patch_dim = in_channels * patch_size * patch_size
        self.proj = nn.Linear(self.patch_dim, embed_dim)

    def patchify(self, images: Tensor) -> Tensor:
        """(B, C, H, W) images -> (B, N, C*P*P) flattened patches, row-major over the grid."""
        B, C, H, W = images.shape
        if (C, H, W) != (self.in_channels, self.image_size, self.image_size):
            raise ConfigError(
                f"this model was built for images of shape (B, {self.in_channels}, {self.image_size}, "
                f"{self.image_size}), got {tuple(images.shape)}; build it with ViTConfig(image_size=..., "
                "in_channels=...) to match the data"
            )
        G, P = self.grid_size, self.patch_size
        x = images.reshape(B, C, G, P, G, P)  # (B, C, grid row, pixel row, grid col, pixel col)
        x = x.permute(0, 2, 4, 1, 3, 5)  # (B, G, G, C, P, P): one (C, P, P) block per grid cell
        return x.reshape(B, G * G, C * P * P)  # (B, N, C*P*P)

    def unpatchify(self, patches: Tensor) -> Tensor:
        """The inverse of `patchify`: (B, N, C*P*P) -> (B, C, H, W)."""
        B, N, D = patches.shape
        G, P, C = self.grid_size, self.patch_size, self.in_channels
        if (N, D) != (self.num_patches, self.patch_dim):
            raise ConfigError(
                f"expected patches of shape (B, {self.num_patches}, {self.patch_dim}), got {tuple(patches.shape)}"
            )
        x = patches.reshape(B, G, G, C, P, P)
        x = x.permute(0, 3, 1, 4, 2, 5)  # (B, C, G, P, G, P)
        return x.reshape(B, C, G * P, G * P)

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) images -> (B, N, E) patch embeddings."""
        return self.proj(self.patchify(images))


def build_conv_stem(in_channels: int, channels: Sequence[int]) -> nn.Sequential:
    """The convolutional stem: per entry of `channels`, a 3 x 3 convolution (padding 1, no
    bias: BatchNorm follows), BatchNorm and ReLU. (B, in_channels, H, W) -> (B, channels[-1], H, W).

    The size is kept, so the patch grid (and every attention map) is the same as without a
    stem; only what each patch holds changes, from pixels to local features.
    """
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers)


class ViT(HookedMixin, CheckpointMixin, nn.Module):
    """Vision Transformer image classifier.

    Args:
        config: a `ViTConfig` (e.g. `ViTConfig.from_name("mnist")`).
    """

    model_type = "vit"
    config_class = ViTConfig

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        c = config
        # No module at all without a stem, so the weights of a stem-less ViT keep their old names.
        self.stem = build_conv_stem(c.in_channels, c.conv_stem) if c.conv_stem else None
        self.patch_embed = PatchEmbedding(c.image_size, c.patch_size, c.patch_channels, c.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_emb = nn.Parameter(torch.zeros(1, c.seq_len, c.embed_dim))  # position 0 is the CLS token's
        self.drop = nn.Dropout(c.dropout)
        self.blocks = block_stack(c)  # num_layers x TransformerBlock (bidirectional, no rotary)
        # Pre-norm blocks leave the stream un-normalised, so a final norm precedes the head.
        self.norm = layer_norm(c.embed_dim, c.layer_norm_eps) if c.norm_first else nn.Identity()
        self.head = nn.Linear(c.embed_dim, c.num_classes)
        # hook points (attnlab.interp): CLS + patch tokens + positions (the stream in), the final norm's output
        self.hook_embed, self.hook_final_norm = HookPoint(), HookPoint()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference ViT initialisation (the paper's JAX code): Xavier-uniform linear
        weights and zero biases in the blocks, LeCun-normal patch projection (std
        1/sqrt(C*P*P)), N(0, init_std) position embeddings and CLS token, unit LayerNorm
        gains, and a zero head (every class starts equally likely).

        A GPT-style N(0, 0.02) for every weight is too small for a model this narrow
        (1/sqrt(64) = 0.125): the signal shrinks layer after layer and training stalls.
        """
        std = self.config.init_std
        init_weights(self, std, linear=xavier_linear)  # Glorot linear layers, unit LayerNorms
        proj = self.patch_embed.proj
        lecun_std = 1.0 / math.sqrt(proj.in_features)
        nn.init.trunc_normal_(proj.weight, std=lecun_std, a=-2 * lecun_std, b=2 * lecun_std)
        nn.init.trunc_normal_(self.pos_emb, std=std, a=-2 * std, b=2 * std)
        nn.init.trunc_normal_(self.cls_token, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        for module in self.stem.modules() if self.stem is not None else ():
            if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
                module.reset_parameters()  # PyTorch's defaults (Kaiming-uniform convolutions, unit BatchNorm)

    def forward(
        self,
        images: Tensor,
        targets: Tensor | None = None,
        *,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> ModelOutput:
        """Class logits.

        Args:
            images: (B, C, H, W) pixels (normalised as during training).
            targets: (B,) class ids; -100 entries are not scored.
            output_attentions: return each layer's (B, H, T, T) attention weights
                (token 0 is CLS, token 1 + n is patch n).
            output_hidden_states: return the (num_layers + 1) token states (B, T, E): the
                embeddings, then each block's output (the last one after the final norm).
        Returns:
            `ModelOutput` with logits (B, K), the mean cross-entropy when targets are given,
            and `extras["features"]`, the pooled (B, E) vector the head reads.
        """
        B = images.shape[0]
        if self.stem is not None:
            c = self.config
            if tuple(images.shape[1:]) != (c.in_channels, c.image_size, c.image_size):
                raise ConfigError(
                    f"this model was built for images of shape (B, {c.in_channels}, {c.image_size}, "
                    f"{c.image_size}), got {tuple(images.shape)}; build it with ViTConfig(image_size=..., "
                    "in_channels=...) to match the data"
                )
            images = self.stem(images)  # (B, conv_stem[-1], H, W): local features, same size
        x = self.patch_embed(images)  # (B, N, E)
        cls = self.cls_token.expand(B, -1, -1)  # (B, 1, E)
        x = torch.cat([cls, x], dim=1) + self.pos_emb  # (B, T, E)
        if self.hooked:
            x = self.hook_embed(x)
        x = self.drop(x)
        hidden_states: list[Tensor] = []
        attentions: list[Tensor] = []
        for block in self.blocks:
            if output_hidden_states:
                hidden_states.append(x)
            out = block(x, need_weights=output_attentions)  # no mask: every token sees every token
            x = out.hidden
            if output_attentions:
                attentions.append(out.attention)
        x = self.norm(x)
        if self.hooked:
            x = self.hook_final_norm(x)
        if output_hidden_states:
            hidden_states.append(x)
        features = x[:, 0] if self.config.pool == "cls" else x[:, 1:].mean(dim=1)  # (B, E)
        logits = self.head(features)  # (B, K)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
        return ModelOutput(
            logits=logits,
            loss=loss,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
            extras={"features": features},
        )

    @torch.no_grad()
    def attention_maps(self, images: Tensor, method: Literal["rollout", "last_layer"] = "rollout") -> Tensor:
        """Where the CLS token looks, as one (G, G) map per image (see `patch_attention_map`).

        Args:
            images: (B, C, H, W) pixels, normalised as in training.
            method: "rollout" (all layers, Abnar & Zuidema 2020) or "last_layer" (the
                last layer's CLS row, averaged over heads).
        Returns:
            (B, G, G) non-negative maps, each summing to 1. The model's mode (train/eval)
            is left as it was; call `model.eval()` first to switch dropout off.
        """
        out = self(images, output_attentions=True)
        return patch_attention_map(out.attentions, self.config.grid_size, method=method)

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------
# Attention rollout
# ---------------------------------------------------------------------------


def attention_rollout(
    attentions: Sequence[Tensor],
    *,
    head_fusion: Literal["mean", "max", "min"] = "mean",
    residual_weight: float = 0.5,
) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each input token reaches each output.

    Per layer l, the heads are fused into one (T, T) matrix A_l, the residual connection
    is accounted for by mixing in the identity, and rows are renormalised:
        A'_l = residual_weight * I + (1 - residual_weight) * A_l,   rows divided by their sum
        rollout = A'_L @ ... @ A'_2 @ A'_1
    Row i of the result is a distribution over the input tokens (each row sums to 1):
    the share of output token i that "came from" each input token, if information only
    moved along attention edges and the residual path.

    Args:
        attentions: per layer (B, H, T, T) softmax weights (`output_attentions=True`),
            first layer first.
        head_fusion: how heads are combined: "mean" (the paper), "max" or "min".
        residual_weight: weight of the identity (the skip connection); 0.5 as in the paper,
            0 ignores the residual stream.
    Returns:
        (B, T, T) rollout matrix, float32.
    """
    if not attentions:
        raise ConfigError("attention_rollout needs at least one layer of attention weights (output_attentions=True)")
    if not 0.0 <= residual_weight <= 1.0:
        raise ConfigError(f"residual_weight must be in [0, 1], got {residual_weight}")
    fuse = {"mean": lambda a: a.mean(dim=1), "max": lambda a: a.amax(dim=1), "min": lambda a: a.amin(dim=1)}
    if head_fusion not in fuse:
        raise ConfigError(f"head_fusion must be one of mean, max, min, got {head_fusion!r}")
    first = attentions[0]
    B, _, T, _ = first.shape
    eye = torch.eye(T, device=first.device, dtype=torch.float32)
    rollout = eye.expand(B, T, T)
    for layer in attentions:
        a = fuse[head_fusion](layer.float())  # (B, T, T)
        a = residual_weight * eye + (1.0 - residual_weight) * a
        a = a / a.sum(dim=-1, keepdim=True)  # rows sum to 1 again (max/min fusion breaks it)
        rollout = a @ rollout  # later layers apply after earlier ones
    return rollout


def patch_attention_map(
    attentions: Sequence[Tensor],
    grid_size: int,
    *,
    method: Literal["rollout", "last_layer"] = "rollout",
    head_fusion: Literal["mean", "max", "min"] = "mean",
    residual_weight: float = 0.5,
) -> Tensor:
    """The CLS token's attention over the patches, laid out as the patch grid.

    Args:
        attentions: per layer (B, H, T, T) weights with T = 1 + grid_size**2 (CLS first).
        grid_size: G, patches per side.
        method: "rollout" (`attention_rollout`, all layers) or "last_layer" (the last
            layer's CLS row, heads fused).
        head_fusion: how heads are combined ("mean", "max", "min").
        residual_weight: identity weight of the rollout (ignored for "last_layer").
    Returns:
        (B, G, G): for each image, the CLS row without the CLS column, renormalised to
        sum to 1 (the share of the CLS token's input that comes from each patch).
    """
    T = attentions[-1].shape[-1]
    if T != 1 + grid_size * grid_size:
        raise ConfigError(
            f"attention over {T} tokens does not fit a CLS token plus a {grid_size} x {grid_size} patch grid"
        )
    if method == "rollout":
        matrix = attention_rollout(attentions, head_fusion=head_fusion, residual_weight=residual_weight)
    elif method == "last_layer":
        matrix = attention_rollout(attentions[-1:], head_fusion=head_fusion, residual_weight=0.0)
    else:
        raise ConfigError(f"method must be 'rollout' or 'last_layer', got {method!r}")
    cls_row = matrix[:, 0, 1:]  # (B, N): what the CLS output takes from each patch
    cls_row = cls_row / cls_row.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return cls_row.reshape(-1, grid_size, grid_size)  # (B, G, G), row-major like patchify
