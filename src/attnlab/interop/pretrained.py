"""`from_pretrained`: one entry point for attnlab checkpoints, Hugging Face folders and hub names.

    model, tokenizer = from_pretrained("path/to/all-MiniLM-L6-v2")    # BERT-family -> Encoder
    model, tokenizer = from_pretrained("runs/my-gpt")                 # an attnlab checkpoint
    model, tokenizer = from_pretrained("gpt2")                        # hub name (online only)

Supported Hugging Face `model_type`s: gpt2 (-> `GPT`), llama (-> `Llama`), bert and roberta
(-> `Encoder`, BERT layout), esm (-> `Encoder`, ESM-2 layout). `convert_from_hf` /
`convert_to_hf` are what `attnlab convert` runs; the latter exports GPT (as GPT-2) and
Llama checkpoints (`EXPORTERS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from attnlab import checkpoint as ckpt
from attnlab.errors import CheckpointError
from attnlab.interop.hf import (
    HFCheckpoint,
    is_hf_folder,
    load_hf_tokenizer,
    read_hf_checkpoint,
    read_hf_config,
    resolve_model_source,
)
from attnlab.runs import writes_run

logger = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES = {
    "gpt2": "GPT-2 (GPT2LMHeadModel, GPT2Model) -> attnlab GPT",
    "llama": "LLaMA (LlamaForCausalLM) -> attnlab Llama",
    "bert": "BERT family incl. MiniLM (BertModel, BertForMaskedLM) -> attnlab Encoder",
    "roberta": "RoBERTa (RobertaModel, RobertaForMaskedLM) -> attnlab Encoder",
    "esm": "ESM-2 / ESM-1b (EsmModel, EsmForMaskedLM) -> attnlab Encoder",
}


@dataclass
class ImportedModel:
    """A converted Hugging Face model."""

    model: nn.Module  # attnlab GPT or Encoder, in eval mode
    tokenizer: Any | None  # attnlab tokenizer, or None when the folder has none
    source: str  # folder (or description) it came from
    hf_model_type: str  # config.json's model_type
    architecture: str  # config.json's architectures[0]

    def metadata(self) -> dict[str, Any]:
        """Fields recorded in the converted checkpoint's config.json."""
        return {
            "converted_from": self.source,
            "hf_model_type": self.hf_model_type,
            "hf_architecture": self.architecture,
        }


def _importer(model_type: str, where: Any) -> Callable[[HFCheckpoint, Any], nn.Module]:
    if model_type == "gpt2":
        from attnlab.interop.gpt2 import import_gpt2

        return lambda c, tok: import_gpt2(c)
    if model_type == "llama":
        from attnlab.interop.llama import import_llama

        return lambda c, tok: import_llama(c)
    if model_type in ("bert", "roberta"):
        from attnlab.interop.bert import import_bert

        return import_bert
    if model_type == "esm":
        from attnlab.interop.esm import import_esm

        return lambda c, tok: import_esm(c)
    raise CheckpointError(
        f"{where}: model_type {model_type!r} is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
    )


def import_checkpoint(checkpoint: HFCheckpoint, tokenizer: Any | None = None) -> nn.Module:
    """Convert an in-memory Hugging Face checkpoint (config + weights) into an attnlab model."""
    return _importer(checkpoint.model_type, checkpoint.folder)(checkpoint, tokenizer)


def import_hf_folder(folder: str | Path) -> ImportedModel:
    """Convert a local Hugging Face model folder (weights and tokenizer).

    Raises:
        CheckpointError: not a model folder, unsupported architecture, missing or mismatched weights.
    """
    folder = Path(folder)
    config = read_hf_config(folder)
    model_type = str(config["model_type"])
    _importer(model_type, folder)  # an unsupported type fails before the weights are read
    checkpoint = read_hf_checkpoint(folder)
    tokenizer = load_hf_tokenizer(folder, model_type)
    model = import_checkpoint(checkpoint, tokenizer)
    return ImportedModel(model, tokenizer, str(folder), model_type, checkpoint.architecture)


def from_transformers(hf_model: Any, tokenizer: Any | None = None) -> nn.Module:
    """Convert a `transformers` model object already in memory (e.g. a randomly initialised one).

    Args:
        hf_model: a GPT2LMHeadModel / GPT2Model / LlamaForCausalLM / BertModel / BertForMaskedLM / RobertaModel /
            EsmModel / EsmForMaskedLM instance.
        tokenizer: an attnlab tokenizer for it (supplies BERT's mask id), or None.
    """
    state = {
        k: v.detach().float().cpu() if v.is_floating_point() else v.detach().cpu()
        for k, v in hf_model.state_dict().items()
    }
    config = hf_model.config.to_dict()
    config.setdefault("architectures", [type(hf_model).__name__])
    checkpoint = HFCheckpoint(Path(f"<{type(hf_model).__name__}>"), config, state)
    return import_checkpoint(checkpoint, tokenizer)


def from_pretrained(
    path_or_name: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None
) -> tuple[nn.Module, Any | None]:
    """Load an attnlab checkpoint, a local Hugging Face folder, or a hub model by name.

    Args:
        path_or_name: an attnlab checkpoint folder, a Hugging Face model folder, or a hub
            name such as "sentence-transformers/all-MiniLM-L6-v2" (downloaded when online).
        revision: hub revision for hub names.
        cache_dir: hub cache folder for hub names.
    Returns:
        (model in eval mode, tokenizer or None).
    Raises:
        CheckpointError: not a model folder, unsupported architecture, corrupt weights.
        DownloadError: a hub name while offline, or a failed download.
    """
    folder = resolve_model_source(path_or_name, revision=revision, cache_dir=cache_dir)
    if ckpt.is_checkpoint(folder):
        from attnlab.models.registry import load_model

        return load_model(folder)
    if not is_hf_folder(folder):
        read_hf_config(folder)  # raises the precise error (no config.json, no model_type ...)
    imported = import_hf_folder(folder)
    return imported.model, imported.tokenizer


@writes_run("convert")
def convert_from_hf(source: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> ImportedModel:
    """Convert a Hugging Face folder (or hub name) into an attnlab checkpoint folder.

    Args:
        source: Hugging Face model folder or hub name.
        out_dir: the attnlab checkpoint folder to write.
        overwrite: replace an existing attnlab checkpoint in `out_dir`.
    Returns:
        The `ImportedModel` that was written.
    """
    from attnlab.models.registry import save_model

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CheckpointError(f"--out {str(out_dir)!r} is a file; pass a folder")
    if ckpt.is_checkpoint(out_dir) and not overwrite:
        raise CheckpointError(
            f"{str(out_dir)!r} already holds an attnlab checkpoint; choose another --out or pass --force"
        )
    folder = resolve_model_source(source)
    if ckpt.is_checkpoint(folder):
        raise CheckpointError(f"{str(source)!r} is already an attnlab checkpoint; nothing to convert")
    imported = import_hf_folder(folder)
    imported.source = str(source)
    save_model(imported.model, out_dir, tokenizer=imported.tokenizer, metadata=imported.metadata())
    return imported


# attnlab model_type -> ("module:function" exporting (model, out_dir, tokenizer), the Hugging Face class that loads it)
EXPORTERS: dict[str, tuple[str, str]] = {
    "gpt": ("attnlab.interop.gpt2:export_gpt2", "GPT2LMHeadModel"),
    "llama": ("attnlab.interop.llama:export_llama", "LlamaForCausalLM"),
}


@writes_run("convert")
def convert_to_hf(checkpoint_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Export an attnlab GPT checkpoint as a Hugging Face GPT-2 folder, or a Llama as a LlamaForCausalLM one.

    Args:
        checkpoint_dir: the attnlab checkpoint (model_type gpt or llama, see `EXPORTERS`).
        out_dir: the Hugging Face folder to write.
        overwrite: replace the files of a model folder already in `out_dir`.
    """
    import importlib

    from attnlab.models.registry import load_model

    out_dir = Path(out_dir)
    meta = ckpt.read_metadata(checkpoint_dir)
    model_type = meta["model_type"]
    if model_type not in EXPORTERS:
        raise CheckpointError(
            f"{str(checkpoint_dir)!r} holds a {model_type} model; only GPT checkpoints can be exported (as GPT-2)"
            " and Llama checkpoints (as LlamaForCausalLM)"
        )
    if out_dir.exists() and out_dir.resolve() == Path(checkpoint_dir).resolve():
        raise CheckpointError("--out must differ from the checkpoint folder (both would hold a config.json)")
    if (out_dir / "config.json").is_file() and not overwrite:
        raise CheckpointError(
            f"{str(out_dir)!r} already holds a model (config.json); choose another --out or pass --force"
        )
    model, tokenizer = load_model(checkpoint_dir, expect=model_type)
    module_name, _, function_name = EXPORTERS[model_type][0].partition(":")
    export = getattr(importlib.import_module(module_name), function_name)
    return export(model, out_dir, tokenizer)
