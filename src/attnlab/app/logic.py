"""What the app's pages compute, as plain functions (no Streamlit), so they are unit-tested.

* The runs folder: finding checkpoints and probes inside it, and refusing any path that
  leads outside it (`..`, absolute paths, symlinks out). Pages never take a free-text path.
* Generation step by step (`generate_steps`) on top of `attnlab.generate.iter_generate`,
  with the top-k tokens of every step, and the attention of the last step.
* Training a tiny GPT in a background thread (`TrainingJob`) whose progress is read from
  the run's metrics.jsonl, so the page can draw a progress bar.
* The ViT and the probe predictions of the Vision & proteins page.

Every user mistake raises an `AttnlabError` subclass with a message meant to be shown
as is (the pages print it with `st.warning`).

Notation: L layers, H heads, T tokens, S keys, V vocabulary, K classes, G patch-grid side.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from attnlab import checkpoint as ckpt
from attnlab.app import DEFAULT_RUNS_DIR, RUNS_ENV
from attnlab.errors import AttnlabError, CheckpointError, ConfigError, DataError
from attnlab.runs import lock_holder

logger = logging.getLogger(__name__)

MAX_SEARCH_DEPTH = 4  # runs/compare/models/vit is depth 3
MAX_NEW_TOKENS = 300  # upper bound of the "tokens to generate" slider
MAX_TEMPERATURE = 3.0
TRAIN_PRESETS = ("nano", "baby")  # what the Generate page can train
MIN_TRAIN_SECONDS, MAX_TRAIN_SECONDS = 3, 300


# ---------------------------------------------------------------------------
# The runs folder
# ---------------------------------------------------------------------------


def runs_root(value: str | os.PathLike | None = None) -> Path:
    """The runs folder: `value`, else $ATTNLAB_APP_RUNS_DIR, else ./runs (absolute, not required to exist)."""
    raw = value if value is not None else os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR
    return Path(raw).expanduser().absolute()


def check_runs_root(root: Path) -> None:
    """Raise a friendly `DataError` when the runs folder is missing or not a folder."""
    if not root.exists():
        raise DataError(
            f"the runs folder {str(root)!r} does not exist yet: train a model (the Generate page can train a "
            "tiny GPT, or run `attnlab demo` in a terminal) or start the app with `attnlab app --runs-dir DIR`"
        )
    if not root.is_dir():
        raise DataError(f"the runs folder {str(root)!r} is a file; start the app with `attnlab app --runs-dir FOLDER`")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def resolve_in_runs(root: Path, relative: str | os.PathLike) -> Path:
    """The folder `relative` inside the runs folder, with every symlink resolved and checked.

    Args:
        root: the runs folder.
        relative: a path relative to it (as listed by `find_checkpoints`).
    Returns:
        The resolved folder.
    Raises:
        CheckpointError: the path is absolute, leaves the runs folder (`..` or a symlink
            pointing outside), or holds a file that links outside it.
    """
    rel = Path(relative)
    real_root = root.resolve()
    if rel.is_absolute() or ".." in rel.parts:
        raise CheckpointError(f"{str(relative)!r} is not a folder inside the runs folder; pick one from the list")
    folder = (real_root / rel).resolve()
    if not _inside(folder, real_root):
        raise CheckpointError(
            f"{str(relative)!r} links outside the runs folder {str(real_root)!r}; the app only reads the runs folder"
        )
    if folder.is_dir():
        for item in folder.iterdir():
            if item.is_symlink() and not _inside(item.resolve(), real_root):
                raise CheckpointError(
                    f"{str(rel / item.name)!r} links outside the runs folder; the app only reads files inside it"
                )
    return folder


@dataclass
class CheckpointEntry:
    """A checkpoint found in the runs folder."""

    relative: str  # path relative to the runs folder (what the pickers show and pass back)
    model_type: str  # gpt, encoder, vit, ...
    config: dict[str, Any]  # the model config
    metadata: dict[str, Any]  # the rest of config.json (step, val_loss, class_names ...)
    modified: float  # modification time of config.json (newest first in lists)
    writer: dict[str, Any] | None = None  # who is training it right now (attnlab.runs.lock_holder), if anyone

    def label(self) -> str:
        """One line for a picker: folder, model size, training progress."""
        c = self.config
        parts = [self.relative, self.model_type]
        if "num_layers" in c and "embed_dim" in c:
            parts.append(f"{c['num_layers']} layers x {c['embed_dim']} wide")
        if self.metadata.get("step") is not None:
            parts.append(f"step {self.metadata['step']}")
        if isinstance(self.metadata.get("val_loss"), (int, float)):
            parts.append(f"val loss {self.metadata['val_loss']:.2f}")
        if isinstance(self.metadata.get("test_accuracy"), (int, float)):
            parts.append(f"test accuracy {100 * self.metadata['test_accuracy']:.1f}%")
        if self.writer is not None:  # its last whole checkpoint is offered; a newer one is on the way
            parts.append("training now")
        return " · ".join(parts)


def _walk(root: Path, max_depth: int):
    """Folders under `root` (itself included) down to `max_depth`, never through symlinks."""
    real_root = root.resolve()
    stack = [(real_root, 0)]
    while stack:
        folder, depth = stack.pop()
        yield folder
        if depth >= max_depth:
            continue
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for child in children:
            if child.is_symlink() or not child.is_dir() or child.name.startswith("."):
                continue  # symlinked folders are never followed (they could lead outside)
            stack.append((child, depth + 1))


def find_checkpoints(root: Path, model_types: Sequence[str] | None = None, max_depth: int = MAX_SEARCH_DEPTH) -> list[CheckpointEntry]:
    """Checkpoint folders inside the runs folder, newest first.

    Args:
        root: the runs folder (a missing folder gives an empty list).
        model_types: keep only these model types (None = all).
        max_depth: how deep to look.
    """
    if not root.is_dir():
        return []
    real_root = root.resolve()
    found = []
    for folder in _walk(root, max_depth):
        if not (folder / ckpt.CONFIG_FILE).is_file():
            continue
        try:
            resolve_in_runs(real_root, folder.relative_to(real_root))  # before reading any of its files
            if not ckpt.is_checkpoint(folder):
                continue
            meta = ckpt.read_metadata(folder)
        except CheckpointError:
            continue
        if model_types is not None and meta["model_type"] not in model_types:
            continue
        rest = {k: v for k, v in meta.items() if k not in ("model_type", "config")}
        rel = folder.relative_to(real_root).as_posix() or "."
        found.append(CheckpointEntry(rel, meta["model_type"], meta["config"], rest, (folder / ckpt.CONFIG_FILE).stat().st_mtime,
                                     writer=lock_holder(folder)))
    return sorted(found, key=lambda e: (-e.modified, e.relative))


def folder_stamp(folder: Path) -> tuple[float, ...]:
    """Modification times of a folder's files (a cache key: a retrained model reloads)."""
    try:
        return tuple(sorted(p.stat().st_mtime for p in folder.iterdir() if p.is_file()))
    except OSError:
        return ()


def load_checkpoint(root: Path, relative: str, expect: str | tuple[str, ...]) -> tuple[Any, Any]:
    """Load a checkpoint of the runs folder (checked with `resolve_in_runs`).

    Returns:
        (model in eval mode, tokenizer or None).
    """
    from attnlab.models.registry import load_model

    folder = resolve_in_runs(root, relative)
    if not ckpt.is_checkpoint(folder):
        raise CheckpointError(f"{relative!r} is no longer a checkpoint (was it deleted?); pick another one")
    return load_model(folder, expect=expect)


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def sampling_from_controls(
    *, temperature: float, top_k: int, top_p: float, max_new_tokens: int, seed: int | None
) -> Any:
    """A `SamplingConfig` from the page's sliders, validated again (the widgets bound them too).

    Args:
        temperature: 0 = greedy, up to MAX_TEMPERATURE.
        top_k: 0 = no limit.
        top_p: 1.0 = no limit.
        max_new_tokens: 1..MAX_NEW_TOKENS.
        seed: sampling seed (None = random).
    Raises:
        ConfigError: a value out of range, with the range.
    """
    from attnlab.generate import SamplingConfig

    values = {"temperature": temperature, "top_p": top_p}
    for name, v in values.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ConfigError(f"{name} must be a number, got {v!r}")
    if not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise ConfigError(f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE}, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top-p must be in (0, 1], got {top_p}")
    if int(top_k) != top_k or top_k < 0:
        raise ConfigError(f"top-k must be a whole number >= 0 (0 = no limit), got {top_k}")
    if int(max_new_tokens) != max_new_tokens or not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ConfigError(f"the number of tokens to generate must be between 1 and {MAX_NEW_TOKENS}, got {max_new_tokens}")
    if seed is not None and (int(seed) != seed or not 0 <= seed < 2**63):
        raise ConfigError(f"the seed must be a whole number >= 0, got {seed}")
    return SamplingConfig(
        max_new_tokens=int(max_new_tokens),
        temperature=float(temperature),
        top_k=int(top_k) or None,
        top_p=None if top_p >= 1.0 else float(top_p),
        seed=None if seed is None else int(seed),
    )


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a prompt.

    Raises:
        DataError: the prompt is empty.
        UnknownCharactersError: characters the model's tokenizer does not know (the
            message names them).
    """
    if not prompt:
        raise DataError("the prompt is empty: type a few words for the model to continue")
    ids = list(tokenizer.encode(prompt))
    if not ids:
        raise DataError(f"the prompt {prompt!r} gives no tokens: type some text the model knows")
    return ids


def display_token(text: str) -> str:
    """A token as a table cell: spaces as ␣, newlines and tabs escaped."""
    from attnlab.viz._mpl import token_label

    return token_label(text)


@dataclass
class TokenChoice:
    """One candidate next token."""

    token_id: int
    token: str  # display form (␣ for a space)
    prob: float


@dataclass
class GenerationStep:
    """One step of generation, ready to display."""

    index: int  # 0-based step number
    token_id: int  # the chosen token
    token: str  # its display form
    prob: float  # its probability under the distribution it was drawn from
    raw_prob: float  # its probability under the raw model (temperature 1, no top-k/top-p)
    top: list[TokenChoice]  # the k most likely tokens of the sampling distribution (raw for greedy)
    raw_top: list[TokenChoice]  # the k most likely tokens of the raw model


@dataclass
class GenerationResult:
    """A whole step-by-step generation."""

    prompt: str
    prompt_ids: list[int]
    new_ids: list[int]
    continuation: str  # decoded new tokens
    steps: list[GenerationStep]
    greedy: bool
    context: int  # the model's max_seq_len (older tokens are dropped when longer)

    @property
    def text(self) -> str:
        """Prompt + continuation."""
        return self.prompt + self.continuation

    @property
    def all_ids(self) -> list[int]:
        return self.prompt_ids + self.new_ids


def _top(probs: Any, tokenizer: Any, k: int) -> list[TokenChoice]:
    import torch

    k = min(k, probs.numel())
    values, ids = torch.topk(probs.float(), k)
    return [TokenChoice(int(i), display_token(tokenizer.decode([int(i)])), float(v)) for v, i in zip(values, ids)]


def generate_steps(model: Any, tokenizer: Any, prompt: str, sampling: Any, k: int = 5) -> GenerationResult:
    """Generate token by token and keep, for every step, the top-k next-token probabilities.

    Args:
        model: a GPT in eval mode.
        tokenizer: its tokenizer.
        prompt: the text to continue (not empty).
        sampling: a `SamplingConfig` (see `sampling_from_controls`).
        k: how many candidates to keep per step.
    """
    import torch

    from attnlab.generate import iter_generate

    ids = encode_prompt(tokenizer, prompt)
    device = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=device)
    steps: list[GenerationStep] = []
    new: list[int] = []
    for i, (_, step) in enumerate(iter_generate(model, x, sampling, tokenizer.eos_id)):
        tid = step.token_id
        raw_top = _top(step.raw_probs, tokenizer, k)
        top = raw_top if sampling.greedy else _top(step.probs, tokenizer, k)
        steps.append(GenerationStep(
            i, tid, display_token(tokenizer.decode([tid])), float(step.probs[tid]), float(step.raw_probs[tid]), top, raw_top,
        ))  # fmt: skip
        new.append(tid)
    return GenerationResult(prompt, ids, new, tokenizer.decode(new), steps, sampling.greedy, int(model.config.max_seq_len))


@dataclass
class LastStepAttention:
    """What the model looked at when it chose the last token."""

    tokens: list[str]  # S key labels (the context the model read)
    weights: np.ndarray  # (L, H, S): the last query's attention row, per layer and head
    full: np.ndarray  # (L, H, S, S): every query of that forward (for the full grid)
    chosen: str  # the token that was chosen from it


def last_step_attention(model: Any, tokenizer: Any, result: GenerationResult) -> LastStepAttention:
    """One forward with attention weights over the context of the last generation step.

    The last generated token was chosen by the last query of the sequence before it
    (cropped to the model's context), so that forward's last attention row shows which
    earlier tokens the model looked at.
    """
    import torch

    ids = result.all_ids
    if not result.new_ids:
        raise DataError("nothing was generated yet")
    context = ids[:-1][-result.context :]
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(torch.tensor([context], device=device), output_attentions=True)
    full = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, H, S, S)
    labels = [display_token(tokenizer.decode([i])) for i in context]
    return LastStepAttention(labels, full[:, :, -1, :], full, result.steps[-1].token)


def token_labels(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Display labels of token ids (␣ for spaces)."""
    return [display_token(tokenizer.decode([int(i)])) for i in ids]


def text_ids(model: Any, tokenizer: Any, text: str, *, truncate: bool = True) -> tuple[list[int], bool]:
    """Token ids of `text` for a GPT, cut to its last `max_seq_len` tokens when `truncate`.

    Returns:
        (ids, whether the text was cut).
    Raises:
        DataError / UnknownCharactersError as `encode_prompt`, or a too-long text without `truncate`.
    """
    ids = encode_prompt(tokenizer, text)
    limit = int(model.config.max_seq_len)
    if len(ids) <= limit:
        return ids, False
    if not truncate:
        raise DataError(f"the text is {len(ids)} tokens long but the model's context is {limit}; shorten it")
    return ids[-limit:], True


# ---------------------------------------------------------------------------
# Training a tiny GPT from the page
# ---------------------------------------------------------------------------


def new_run_folder(root: Path, prefix: str) -> Path:
    """A fresh folder name inside the runs folder: PREFIX-YYYYmmdd-HHMMSS[-n]."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = root / f"{prefix}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{prefix}-{stamp}-{n}"
    return folder


class TrainingJob:
    """Train a small GPT on the embedded corpus in a background thread.

    The thread measures the speed of this machine, sets the number of steps that fit in
    `seconds`, and runs `attnlab.train.recipes.train_language_model`; `progress()` reads
    how far it got from the run's metrics.jsonl (what the Trainer writes anyway), so the
    Trainer needs no callback.

    Args:
        root: the runs folder (created if missing).
        preset: a GPT preset ("nano" or "baby").
        seconds: training time budget (MIN_TRAIN_SECONDS..MAX_TRAIN_SECONDS).
        seed: training seed.
    """

    def __init__(self, root: Path, preset: str = "nano", seconds: float = 20.0, seed: int = 1337):
        if preset not in TRAIN_PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(TRAIN_PRESETS)}")
        if not MIN_TRAIN_SECONDS <= seconds <= MAX_TRAIN_SECONDS:
            raise ConfigError(f"the training time must be between {MIN_TRAIN_SECONDS} and {MAX_TRAIN_SECONDS} seconds, got {seconds}")
        if root.exists() and not root.is_dir():
            raise DataError(f"the runs folder {str(root)!r} is a file; start the app with another --runs-dir")
        self.root = root
        self.preset = preset
        self.seconds = float(seconds)
        self.seed = seed
        self.folder = new_run_folder(root, f"app-gpt-{preset}")
        self.max_iters: int | None = None  # known once the speed is measured
        self.results: dict[str, Any] | None = None
        self.error: str | None = None
        self.started = time.monotonic()
        self._started = False
        self._thread = threading.Thread(target=self._run, name=f"attnlab-train-{self.folder.name}", daemon=True)

    def start(self) -> "TrainingJob":
        self.root.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self._started = True
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._started and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or `timeout` seconds pass); True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def relative(self) -> str:
        """The run folder relative to the runs folder."""
        return self.folder.name

    def _run(self) -> None:
        from attnlab.data.text import DEFAULT_CORPUS, load_text
        from attnlab.models.gpt_config import GPTConfig
        from attnlab.train.recipes import DataConfig, build_tokenizer_for, calibrate_iterations, train_language_model
        from attnlab.train.trainer import TrainConfig

        try:
            data = DataConfig(source=DEFAULT_CORPUS, tokenizer="char")
            model = GPTConfig.from_name(self.preset)
            tokenizer = build_tokenizer_for(data, load_text(DEFAULT_CORPUS).text)
            base = TrainConfig(seed=self.seed, eval_interval=0, eval_iters=5, progress=False)
            iters, _ = calibrate_iterations(model, base, self.seconds, tokenizer.vocab_size)
            self.max_iters = iters
            train = dataclasses.replace(
                base,
                max_iters=iters,
                warmup_iters=min(100, max(1, iters // 10)),
                eval_interval=max(1, iters // 4),
                log_interval=max(1, iters // 100),
                max_time=self.seconds * 1.5,  # a guard if the machine slows down
            )
            self.results = train_language_model(self.folder, data=data, model=model, train=train, write_plots=False)
        except AttnlabError as e:
            self.error = str(e)
        except Exception as e:  # a bug: say so on the page, keep the traceback in the server log
            logger.exception("training from the app failed")
            self.error = f"training failed unexpectedly ({type(e).__name__}: {e}); see the terminal running `attnlab app`"

    def progress(self) -> tuple[float, str]:
        """(fraction done in [0, 1], a one-line status)."""
        if self.error is not None:
            return 1.0, f"failed: {self.error}"
        if self.results is not None:
            r = self.results
            loss = r.get("val_loss")
            return 1.0, f"done: {r.get('step')} steps" + (f", validation loss {loss:.2f}" if loss is not None else "")
        if self.max_iters is None:
            return 0.0, "measuring the speed of this machine ..."
        step, loss = 0, None
        path = self.folder / "metrics.jsonl"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in reversed(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written
            step, loss = int(record.get("step", 0)), record.get("train_loss")
            break
        elapsed = time.monotonic() - self.started
        fraction = max(step / self.max_iters, min(elapsed / self.seconds, 1.0) * 0.95)
        text = f"step {step} of {self.max_iters}" + (f", training loss {loss:.2f}" if loss is not None else "")
        return min(fraction, 1.0), text


# ---------------------------------------------------------------------------
# Vision: a digit through a ViT
# ---------------------------------------------------------------------------

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
                f"this ViT was trained on {trained_on or 'unknown images'!r}; the app can show only the digits that ship "
                f"with attnlab ({', '.join(OFFLINE_IMAGE_SETS)}). Train one on them: "
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


def vit_predict(model: Any, metadata: dict[str, Any], image: np.ndarray, data_mean: float, data_std: float) -> VitPrediction:
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


# ---------------------------------------------------------------------------
# Proteins: a sequence through a probe
# ---------------------------------------------------------------------------

PROBE_FILE = "probe.json"
EMBEDDER_FILE = "embedder.json"  # optional sidecar: {"identity": "...", "pooling": "mean"}
LABELS_FILE = "labels.json"  # optional sidecar: a LabelEncoder (`attnlab.bio.data.LabelEncoder.save`)


@dataclass
class ProbeEntry:
    """A trained probe found in the runs folder."""

    relative: str
    kind: str
    task: str
    input_dim: int
    features: str | None  # "composition", "onehot", or None when unknown
    features_note: str  # how the features were determined
    classes: list[str] = field(default_factory=list)
    pooling: str = "mean"  # how per-residue features were pooled (embedder.json "pooling"): mean or max

    def label(self) -> str:
        return f"{self.relative} · {self.kind} probe · {self.task} · {self.features or 'unknown features'}"


def _probe_features(kind: str, input_dim: int, meta: dict[str, Any], sidecar: dict[str, Any]) -> tuple[str | None, str]:
    identity = str(meta.get("embedder") or sidecar.get("identity") or "")
    if identity.startswith("control:composition:protein") and input_dim == 22:
        return "composition", "composition + length (recorded with the probe)"
    if identity.startswith("control:onehot:protein") and input_dim == 21:
        return "onehot", "one-hot residues (recorded with the probe)"
    if identity:
        return None, (
            f"the probe reads {identity!r} features, which the app cannot compute yet (it computes the "
            "composition and one-hot controls)"
        )
    if input_dim == 22 and kind != "attention":
        return "composition", "composition + length (guessed from its 22 input features)"
    if input_dim == 21:
        return "onehot", "one-hot residues (guessed from its 21 input features)"
    return None, (
        f"the probe reads {input_dim}-dimensional features and records no embedder; save an {EMBEDDER_FILE} "
        'next to it, e.g. {"identity": "control:composition:protein:length=1:v1"}'
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def find_probes(root: Path, max_depth: int = MAX_SEARCH_DEPTH) -> list[ProbeEntry]:
    """Probe folders (`attnlab.bio.probes.Probe.save`) inside the runs folder."""
    if not root.is_dir():
        return []
    real_root = root.resolve()
    found = []
    for folder in _walk(root, max_depth):
        if not (folder / PROBE_FILE).is_file():
            continue
        rel = folder.relative_to(real_root)
        try:
            resolve_in_runs(real_root, rel)
        except CheckpointError:
            continue
        meta = _read_json(folder / PROBE_FILE)
        if not {"kind", "task", "input_dim"} <= set(meta):
            continue
        sidecar = _read_json(folder / EMBEDDER_FILE)
        features, note = _probe_features(str(meta["kind"]), int(meta["input_dim"]), meta, sidecar)
        labels = _read_json(folder / LABELS_FILE)
        classes = [str(c) for c in (meta.get("classes") or labels.get("classes") or [])]
        found.append(ProbeEntry(rel.as_posix() or ".", str(meta["kind"]), str(meta["task"]), int(meta["input_dim"]),
                                features, note, classes, str(sidecar.get("pooling") or "mean")))
    return sorted(found, key=lambda e: e.relative)


@dataclass
class ProbePrediction:
    """A probe's answer for one sequence."""

    task: str
    class_names: list[str]  # K names (empty for regression)
    probs: np.ndarray | None  # (K,) probabilities (None for regression)
    value: float | None  # regression output
    residues: str  # the cleaned sequence


def clean_protein(sequence: str) -> str:
    """Upper-cased sequence without whitespace (FASTA line breaks), checked against the alphabet.

    Raises:
        DataError: empty; InvalidLettersError (an UnknownCharactersError): letters outside the alphabet.
    """
    from attnlab.bio.tokenizers import ProteinTokenizer

    text = "".join(sequence.split())
    if text.startswith(">"):
        raise DataError("paste the sequence without its FASTA header line (the line starting with '>')")
    if not text:
        raise DataError("the sequence is empty: paste a protein sequence in one-letter code, e.g. GIGKFLHSAKKFGKAFVGEIMNS")
    tok = ProteinTokenizer()
    tok.encode(text)  # raises naming the bad letters
    return tok.normalize(text)


def probe_predict(root: Path, entry: ProbeEntry, sequence: str) -> ProbePrediction:
    """Run a probe of the runs folder on one protein sequence."""
    from attnlab.bio.controls import composition, one_hot
    from attnlab.bio.probes import Probe

    if entry.features is None:
        raise DataError(f"cannot use this probe: {entry.features_note}")
    residues = clean_protein(sequence)
    folder = resolve_in_runs(root, entry.relative)
    probe = Probe.load(folder)
    if entry.features == "composition":
        X: Any = composition([residues])
    elif probe.takes_residues:
        X = [one_hot(residues)]
    elif entry.pooling == "max":
        X = one_hot(residues).max(axis=0, keepdims=True)
    else:
        X = one_hot(residues).mean(axis=0, keepdims=True)
    if probe.task == "regression":
        return ProbePrediction(probe.task, [], None, float(np.asarray(probe.predict(X))[0]), residues)
    if probe.task == "residue":
        raise DataError("per-residue probes are not shown by the app yet; use a sequence-level probe")
    probs = np.asarray(probe.predict_proba(X))[0]
    names = entry.classes if len(entry.classes) == len(probs) else [f"class {i}" for i in range(len(probs))]
    return ProbePrediction(probe.task, names, probs, None, residues)


__all__ = [
    "CheckpointEntry",
    "GenerationResult",
    "GenerationStep",
    "LastStepAttention",
    "ProbeEntry",
    "ProbePrediction",
    "TokenChoice",
    "TrainingJob",
    "VitPrediction",
    "check_runs_root",
    "clean_protein",
    "digit_source",
    "encode_prompt",
    "find_checkpoints",
    "find_probes",
    "folder_stamp",
    "generate_steps",
    "last_step_attention",
    "load_checkpoint",
    "new_run_folder",
    "probe_predict",
    "resolve_in_runs",
    "runs_root",
    "sampling_from_controls",
    "text_ids",
    "token_labels",
    "vit_predict",
]
