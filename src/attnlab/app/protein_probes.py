"""What the proteins half of the Vision & proteins page computes: a sequence through a trained probe.

`find_probes` lists the probe folders of the runs folder (checked like checkpoints, with
`attnlab.app.runs_folder`), and `probe_predict` runs one on a pasted sequence.

Notation: K classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import pretrained as pretrained_models
from attnlab.app.runs_folder import MAX_SEARCH_DEPTH, PRETRAINED, is_pretrained, resolve_in_runs, walk_runs
from attnlab.errors import CheckpointError, DataError

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
        where = f"{Path(self.relative).name} · pre-trained" if is_pretrained(self.relative) else self.relative
        return f"{where} · {self.kind} probe · {self.task} · {self.features or 'unknown features'}"


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


def find_pretrained_probes() -> list[ProbeEntry]:
    """The installed pre-trained probes (`attnlab room install`), listed as `.pre-trained/NAME`."""
    models = pretrained_models.models_dir()
    found = []
    for name in pretrained_models.installed():
        if (models / name / PROBE_FILE).is_file():
            entry = _probe_entry(models / name, Path(PRETRAINED) / name)
            if entry is not None:
                found.append(entry)
    return found


def find_probes(root: Path, max_depth: int = MAX_SEARCH_DEPTH, *, pretrained: bool = False) -> list[ProbeEntry]:
    """Probe folders (`attnlab.bio.probes.Probe.save`) inside the runs folder (then, with `pretrained`, the installed ones)."""
    extra = find_pretrained_probes() if pretrained else []
    if not root.is_dir():
        return extra
    real_root = root.resolve()
    found = []
    for folder in walk_runs(root, max_depth):
        if not (folder / PROBE_FILE).is_file():
            continue
        rel = folder.relative_to(real_root)
        try:
            resolve_in_runs(real_root, rel)
        except CheckpointError:
            continue
        entry = _probe_entry(folder, rel)
        if entry is not None:
            found.append(entry)
    return sorted(found, key=lambda e: e.relative) + extra


def _probe_entry(folder: Path, rel: Path) -> ProbeEntry | None:
    """The ProbeEntry of a probe folder (listed as `rel`), or None when its probe.json is incomplete."""
    meta = _read_json(folder / PROBE_FILE)
    if not {"kind", "task", "input_dim"} <= set(meta):
        return None
    sidecar = _read_json(folder / EMBEDDER_FILE)
    features, note = _probe_features(str(meta["kind"]), int(meta["input_dim"]), meta, sidecar)
    labels = _read_json(folder / LABELS_FILE)
    classes = [str(c) for c in (meta.get("classes") or labels.get("classes") or [])]
    return ProbeEntry(
        rel.as_posix() or ".",
        str(meta["kind"]),
        str(meta["task"]),
        int(meta["input_dim"]),
        features,
        note,
        classes,
        str(sidecar.get("pooling") or "mean"),
    )


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
        raise DataError(
            "the sequence is empty: paste a protein sequence in one-letter code, e.g. GIGKFLHSAKKFGKAFVGEIMNS"
        )
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
    "EMBEDDER_FILE",
    "LABELS_FILE",
    "PROBE_FILE",
    "ProbeEntry",
    "ProbePrediction",
    "clean_protein",
    "find_pretrained_probes",
    "find_probes",
    "probe_predict",
]
