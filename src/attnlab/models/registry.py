"""Which class builds which checkpoint: `model_type` -> model class, and generic save/load.

Every attnlab PyTorch model has a class attribute `model_type`, a frozen config
dataclass in `config` (its class in `config_class`), and weights whose names are
stable. `save_model` writes them through the engine-neutral format of
`attnlab.checkpoint`; `load_model` reads any registered model back, checking that the
weights match the config exactly.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnlab import checkpoint as ckpt
from attnlab.config import from_dict, to_dict
from attnlab.errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # torch is imported by the functions that need it: the capability table is torch-free
    import torch
    from torch import nn

# What a model can do, readable without importing its class: the CLI, the app, the logit
# lens and the figures ask "which model types are causal LMs?" instead of naming "gpt".
CAPABILITIES = ("causal_lm", "masked_lm", "encoder_decoder", "classifier", "image")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model type: its class as "module:Class" (imported lazily) and what it can do.

    `config` names the config dataclass the same way where it lives apart from the model
    (torch-free), so choosing an architecture never imports torch; None: `target.config_class`.
    `label` is how messages name such a model ("GPT"); None: "<model_type> model".
    """

    target: str
    capabilities: frozenset[str] = frozenset()
    config: str | None = None
    label: str | None = None


# model_type -> entry; classes are imported lazily so loading a GPT never imports the ViT.
MODELS: dict[str, ModelEntry] = {
    "gpt": ModelEntry("attnlab.models.gpt:GPT", frozenset({"causal_lm"}), "attnlab.configs.gpt:GPTConfig", "GPT"),
    "llama": ModelEntry(
        "attnlab.models.llama:Llama", frozenset({"causal_lm"}), "attnlab.configs.llama:LlamaConfig", "LLaMA-style model"
    ),
    "encoder": ModelEntry("attnlab.models.encoder:Encoder", frozenset({"masked_lm", "classifier"})),
    "seq2seq": ModelEntry("attnlab.models.seq2seq:Seq2Seq", frozenset({"encoder_decoder"})),
    "rnn_seq2seq": ModelEntry(
        "attnlab.models.rnn_seq2seq:RNNSeq2Seq",
        frozenset({"encoder_decoder"}),
        "attnlab.configs.rnn_seq2seq:RNNSeq2SeqConfig",
        "recurrent encoder-decoder",
    ),
    "vit": ModelEntry("attnlab.models.vit:ViT", frozenset({"image", "classifier"})),
    "mlp": ModelEntry("attnlab.models.baselines:MLPClassifier", frozenset({"image", "classifier"})),
    "convnet": ModelEntry("attnlab.models.baselines:ConvNetClassifier", frozenset({"image", "classifier"})),
    "recurrent": ModelEntry("attnlab.models.baselines:RecurrentModel", frozenset({"classifier"})),
    "sequence_transformer": ModelEntry(
        "attnlab.models.sequence_transformer:SequenceTransformer", frozenset({"classifier"})
    ),
    "point_transformer": ModelEntry(
        "attnlab.models.point:PointTransformer",
        frozenset({"classifier"}),
        "attnlab.configs.point:PointTransformerConfig",
        "point-cloud transformer",
    ),
    "pointnet": ModelEntry(
        "attnlab.models.point:PointNet", frozenset({"classifier"}), "attnlab.configs.point:PointNetConfig", "PointNet"
    ),
    "point_mlp": ModelEntry(
        "attnlab.models.point:PointMLP", frozenset({"classifier"}), "attnlab.configs.point:PointMLPConfig", "point MLP"
    ),
}

# The model type a command builds when none is named, per capability (e.g. `attnlab train`).
DEFAULT_MODEL_TYPES: dict[str, str] = {"causal_lm": "gpt"}


class _Targets(Mapping[str, str]):
    """model_type -> "module:Class", a live read-only view of MODELS (the registry's older table)."""

    def __getitem__(self, model_type: str) -> str:
        return MODELS[model_type].target

    def __iter__(self) -> Iterator[str]:
        return iter(MODELS)

    def __len__(self) -> int:
        return len(MODELS)


MODEL_CLASSES: Mapping[str, str] = _Targets()


def register_model(
    model_type: str, target: str, capabilities: Iterable[str] = (), config: str | None = None, label: str | None = None
) -> None:
    """Register `module:Class` as the loader of checkpoints whose model_type is `model_type`.

    Args:
        model_type: the `model_type` its checkpoints record.
        target: "module:Class", imported only when such a model is built or loaded.
        capabilities: what it can do, from CAPABILITIES (e.g. {"causal_lm"}).
        config: "module:Class" of its config dataclass when that lives apart from the model.
        label: how messages name such a model (e.g. "GPT"); default "<model_type> model".
    Raises:
        ValueError: an unknown capability name.
    """
    caps = frozenset(capabilities)
    unknown = sorted(caps - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"unknown capabilities {', '.join(unknown)}; choose from {', '.join(CAPABILITIES)}")
    MODELS[model_type] = ModelEntry(target, caps, config, label)


def _check_capability(capability: str) -> None:
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; choose from {', '.join(CAPABILITIES)}")


def model_types(capability: str | None = None) -> tuple[str, ...]:
    """The registered model types (in registration order) that have `capability` (None: all)."""
    if capability is None:
        return tuple(MODELS)
    _check_capability(capability)
    return tuple(name for name, entry in MODELS.items() if capability in entry.capabilities)


def capabilities(model_type: str) -> frozenset[str]:
    """What `model_type` can do; an unregistered type can do nothing (an empty set)."""
    entry = MODELS.get(model_type)
    return entry.capabilities if entry is not None else frozenset()


def has_capability(model: Any, capability: str) -> bool:
    """Whether `model` (anything with a `model_type`, or a model_type string) has `capability`."""
    _check_capability(capability)
    model_type = model if isinstance(model, str) else getattr(model, "model_type", None)
    return isinstance(model_type, str) and capability in capabilities(model_type)


def model_label(model_type: str) -> str:
    """How messages name a `model_type` model: its entry's label ("GPT"), else "<model_type> model"."""
    entry = MODELS.get(model_type)
    return entry.label if entry is not None and entry.label else f"{model_type} model"


def default_model_type(capability: str) -> str:
    """The model type built for `capability` when none is named ("gpt" for causal_lm)."""
    _check_capability(capability)
    if capability not in DEFAULT_MODEL_TYPES:
        raise ValueError(f"no default model type for {capability!r}")
    return DEFAULT_MODEL_TYPES[capability]


def _import(target: str) -> Any:
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def model_class(model_type: str) -> type[nn.Module]:
    """The class registered for `model_type`."""
    entry = MODELS.get(model_type)
    if entry is None:
        raise CheckpointError(
            f"unknown model_type {model_type!r} in checkpoint; known types: {', '.join(sorted(MODELS))}"
        )
    return _import(entry.target)


def config_class(model_type: str) -> type:
    """The config dataclass of `model_type` (without importing the model where the entry names it)."""
    entry = MODELS.get(model_type)
    if entry is not None and entry.config is not None:
        return _import(entry.config)
    return model_class(model_type).config_class


def model_type_for_config(config: Any, capability: str | None = None) -> str | None:
    """The registered model type whose config dataclass `config` is (among those with `capability`)."""
    cls = type(config)
    for name in model_types(capability):
        entry = MODELS[name]
        if entry.config is not None:
            if entry.config == f"{cls.__module__}:{cls.__qualname__}":
                return name
            continue
        try:
            if config_class(name) is cls:
                return name
        except ImportError:  # a registered model whose module is not installed cannot own it
            continue
    return None


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


def save_model(
    model: nn.Module, folder: str | Path, *, tokenizer: Any | None = None, metadata: dict[str, Any] | None = None
) -> Path:
    """Write `model` (any registered attnlab model) as a checkpoint folder.

    Weights are stored in float32 (a bf16/fp16 model is upcast); tied weights once.
    """
    import torch

    tied = _tied_names(model)
    state = {
        k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
        if k not in tied
    }
    meta = {"engine": "torch", "dtype": "float32", "tied": tied, **(metadata or {})}
    return ckpt.save_model(
        folder,
        model_type=model.model_type,
        config=to_dict(model.config),
        tensors=state,
        tokenizer=tokenizer,
        metadata=meta,
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
    dtype: torch.dtype | None = None,
) -> tuple[nn.Module, Any]:
    """Load any attnlab checkpoint into its PyTorch model, in eval mode.

    Args:
        folder: checkpoint folder.
        map_location: device for the weights.
        expect: model_type(s) the caller can use; anything else is a CheckpointError.
        dtype: floating dtype of the returned model (default float32).
    Returns:
        (model, tokenizer or None).
    """
    import torch

    dtype = torch.float32 if dtype is None else dtype
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
