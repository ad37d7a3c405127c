"""Which class builds which checkpoint: `model_type` -> model class, and generic save/load.

Every attnlab PyTorch model has a class attribute `model_type`, a frozen config
dataclass in `config` (its class in `config_class`), and weights whose names are
stable. `save_model` writes them through the engine-neutral format of
`attnlab.checkpoint`; `load_model` reads any registered model back, checking that the
weights match the config exactly.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab import checkpoint as ckpt
from attnlab.config import from_dict, to_dict
from attnlab.errors import CheckpointError, ConfigError

# model_type -> "module:Class"; imported lazily so loading a GPT never imports the ViT.
MODEL_CLASSES: dict[str, str] = {
    "gpt": "attnlab.models.gpt:GPT",
    "encoder": "attnlab.models.encoder:Encoder",
    "seq2seq": "attnlab.models.seq2seq:Seq2Seq",
    "vit": "attnlab.models.vit:ViT",
    "mlp": "attnlab.models.baselines:MLPClassifier",
    "convnet": "attnlab.models.baselines:ConvNetClassifier",
    "recurrent": "attnlab.models.baselines:RecurrentModel",
    "sequence_transformer": "attnlab.models.sequence_transformer:SequenceTransformer",
}


def register_model(model_type: str, target: str) -> None:
    """Register `module:Class` as the loader of checkpoints whose model_type is `model_type`."""
    MODEL_CLASSES[model_type] = target


def model_class(model_type: str) -> type[nn.Module]:
    """The class registered for `model_type`."""
    target = MODEL_CLASSES.get(model_type)
    if target is None:
        raise CheckpointError(
            f"unknown model_type {model_type!r} in checkpoint; known types: {', '.join(sorted(MODEL_CLASSES))}"
        )
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _tied_names(model: nn.Module) -> dict[str, str]:
    """Parameter names that alias an earlier parameter: {alias: original}."""
    seen: dict[int, str] = {}
    tied: dict[str, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            tied[name] = seen[id(p)]
        else:
            seen[id(p)] = name
    return tied


def save_model(model: nn.Module, folder: str | Path, *, tokenizer: Any | None = None, metadata: dict[str, Any] | None = None) -> Path:
    """Write `model` (any registered attnlab model) as a checkpoint folder.

    Weights are stored in float32 (a bf16/fp16 model is upcast); tied weights once.
    """
    tied = _tied_names(model)
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items() if k not in tied}
    meta = {"engine": "torch", "dtype": "float32", "tied": tied, **(metadata or {})}
    return ckpt.save_model(
        folder, model_type=model.model_type, config=to_dict(model.config), tensors=state, tokenizer=tokenizer, metadata=meta
    )


def build_config(model_type: str, config: dict[str, Any]) -> Any:
    """The config dataclass of `model_type` built (strictly) from a dict."""
    cls = model_class(model_type)
    try:
        return from_dict(cls.config_class, config, section="config")
    except ConfigError as e:
        raise CheckpointError(f"checkpoint config is invalid: {e}") from None


def load_model(
    folder: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    expect: str | tuple[str, ...] | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[nn.Module, Any]:
    """Load any attnlab checkpoint into its PyTorch model, in eval mode.

    Args:
        folder: checkpoint folder.
        map_location: device for the weights.
        expect: model_type(s) the caller can use; anything else is a CheckpointError.
        dtype: floating dtype of the returned model.
    Returns:
        (model, tokenizer or None).
    """
    saved = ckpt.read_model(folder)
    if expect is not None:
        allowed = (expect,) if isinstance(expect, str) else expect
        if saved.model_type not in allowed:
            raise CheckpointError(
                f"{str(folder)!r} holds a {saved.model_type!r} model, but this command needs {' or '.join(allowed)}"
            )
    cls = model_class(saved.model_type)
    config = build_config(saved.model_type, saved.config)
    model = cls(config)
    state = {k: torch.from_numpy(v.copy()) for k, v in saved.tensors.items()}
    expected = {k for k in model.state_dict() if k not in _tied_names(model)}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise CheckpointError(
            f"weights in {str(folder)!r} do not match its config: "
            + (f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}" if unexpected else "")
        )
    own = model.state_dict()
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"weight {name} in {str(folder)!r} has shape {tuple(tensor.shape)}, but the config needs {tuple(own[name].shape)}"
            )
    # cast first: loading float64 weights into a float32 model would round them
    model.to(dtype=dtype)
    model.load_state_dict(state, strict=False)  # tied aliases are restored by the module itself
    model.to(device=map_location)
    model.eval()
    return model, saved.tokenizer
