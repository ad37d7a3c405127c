"""What every attnlab PyTorch model class shares: writing and reading its checkpoints.

`CheckpointMixin` gives a model class (one with `model_type`, `config_class` and a
frozen `config`) `save` and `from_checkpoint`, both through the registry
(`attnlab.models.registry.save_model` / `load_model`), so a checkpoint written by any
model reads back with `load_model` and the other way round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch

from attnlab.models.registry import load_model, save_model

__all__ = ["CheckpointMixin"]

M = TypeVar("M", bound="CheckpointMixin")


class CheckpointMixin:
    """`save(folder)` and `cls.from_checkpoint(folder)` for a registered model class."""

    model_type: str  # the registry key written into config.json

    def save(self, folder: str | Path, tokenizer: Any | None = None, metadata: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint folder (config.json, model.safetensors, the tokenizer if given)."""
        return save_model(self, folder, tokenizer=tokenizer, metadata=metadata)  # type: ignore[arg-type]

    @classmethod
    def from_checkpoint(cls: type[M], folder: str | Path, map_location: str | torch.device = "cpu") -> M:
        """Load a checkpoint of this model type (in eval mode); another type is a `CheckpointError`."""
        model, _ = load_model(folder, map_location=map_location, expect=cls.model_type)
        return model  # type: ignore[return-value]
