"""What the Vision half of the Vision & proteins page computes: a digit through a trained ViT.

Notation: K classes, G patch-grid side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.errors import DataError

OFFLINE_IMAGE_SETS = ("mnist5k", "digits")  # shipped inside installed packages (no user files)
_COMPATIBLE = {"mnist": "mnist5k", "mnist-t10k-split": "mnist5k", "mnist5k": "mnist5k", "digits": "digits"}


def digit_source(metadata: dict[str, Any], config: dict[str, Any]) -> tuple[str, str]:
    """Which shipped image set feeds a ViT, and a note for the page.

    Returns:
        (data set name, note).
    Raises:
        DataError: the ViT was trained on images the app cannot provide offline.
    """
    trained_on = str(metadata.get("data") or "")
    name = _COMPATIBLE.get(trained_on)
    if name is None:
        size = config.get("image_size")
        name = "mnist5k" if size == 28 else ("digits" if size == 8 else None)
        if name is None or trained_on in ("fashion",):
            raise DataError(
                f"this ViT was trained on {trained_on or 'unknown images'!r}; the app can show only the digits that "
                f"ship with attnlab ({', '.join(OFFLINE_IMAGE_SETS)}). Train one on them: "
                "`attnlab compare mnist --models vit --out runs/compare-mnist`"
            )
        return name, f"digits from {name} (the model was trained on {trained_on or 'unknown images'})"
    if name != trained_on:
        return name, f"test digits from {name}, the offline sample of the {trained_on} images the model was trained on"
    return name, f"test digits of {name}, which the model did not train on"


@dataclass
class VitPrediction:
    """A ViT's answer for one image."""

    probs: np.ndarray  # (K,) class probabilities
    rollout: np.ndarray  # (G, G) attention rollout of the CLS token over the patches
    last_layer: np.ndarray  # (G, G) the last layer's CLS attention (mean over heads)

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax())


def vit_predict(
    model: Any, metadata: dict[str, Any], image: np.ndarray, data_mean: float, data_std: float
) -> VitPrediction:
    """Class probabilities and attention maps of a ViT for one (H, W) or (C, H, W) image in [0, 1].

    The image is normalised with the statistics stored in the checkpoint (as in
    training), falling back to the image set's own.
    """
    import torch

    from attnlab.models.vit import patch_attention_map

    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    size = model.config.image_size
    if x.shape != (model.config.in_channels, size, size):
        raise DataError(f"the ViT reads {model.config.in_channels}x{size}x{size} images, got {tuple(x.shape)}")
    mean = float(metadata.get("normalize_mean", data_mean))
    std = float(metadata.get("normalize_std", data_std)) or 1.0
    batch = torch.from_numpy((x - mean) / std)[None].to(next(model.parameters()).device)
    with torch.no_grad():
        out = model(batch, output_attentions=True)
        probs = torch.softmax(out.logits[0].float(), -1).cpu().numpy()
        grid = model.config.grid_size
        rollout = patch_attention_map(out.attentions, grid, method="rollout")[0].cpu().numpy()
        last = patch_attention_map(out.attentions, grid, method="last_layer")[0].cpu().numpy()
    return VitPrediction(probs, rollout, last)


__all__ = [
    "OFFLINE_IMAGE_SETS",
    "VitPrediction",
    "digit_source",
    "vit_predict",
]
