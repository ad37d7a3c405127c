"""Fixtures of the probing tests: tiny protein encoder checkpoints and small labelled files.

Every model here is a few thousand parameters with a short context (14 residues), so
sequences of 20-40 residues exercise the sliding-window policy of `EncoderEmbedder`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.bio.tokenizers import STANDARD_AMINO_ACIDS, ProteinTokenizer
from attnlab.models.encoder import Encoder, EncoderConfig

IN_CI = __import__("os").environ.get("CI", "").lower() in ("1", "true", "yes")


def tiny_protein_config(**overrides) -> EncoderConfig:
    """An ESM-2-style encoder: 2 layers, 16 wide, context 16 tokens (14 residues)."""
    return EncoderConfig.from_name(
        "protein-small", max_seq_len=16, num_layers=2, num_heads=2, embed_dim=16, **overrides
    )


def save_tiny_encoder(folder: Path, seed: int = 0, **overrides) -> Path:
    torch.manual_seed(seed)
    model = Encoder(tiny_protein_config(**overrides))
    model.save(folder, tokenizer=ProteinTokenizer())
    return folder


@pytest.fixture(scope="session")
def tiny_protein_checkpoint(tmp_path_factory) -> Path:
    """An attnlab encoder checkpoint with the protein tokenizer (random weights, seed 0)."""
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny-plm"), seed=0)


def random_sequences(n: int, low: int, high: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list(STANDARD_AMINO_ACIDS))
    return ["".join(rng.choice(letters, rng.integers(low, high + 1))) for _ in range(n)]


@pytest.fixture
def class_csv(tmp_path) -> Path:
    """60 peptides labelled 'rich' (many K and R) or 'poor': a task the composition solves."""
    rng = np.random.default_rng(1)
    rows = ["id,sequence,label"]
    for i, seq in enumerate(random_sequences(60, 8, 24, seed=2)):
        label = "rich" if i % 2 else "poor"
        if label == "rich":
            seq = "".join(c if rng.random() > 0.5 else "K" for c in seq)
        rows.append(f"s{i},{seq},{label}")
    path = tmp_path / "peptides.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def residue_csv(tmp_path) -> Path:
    """30 sequences of 10-30 residues; the residue class is whether the previous residue is K.

    Context decides the label, so only a probe that sees neighbours can learn it. Split
    columns give train / test (the workflow carves a validation split out of train).
    """
    rows = ["id,sequence,label,mask,split"]
    for i, seq in enumerate(random_sequences(30, 10, 30, seed=3)):
        labels = "".join("A" if j > 0 and seq[j - 1] == "K" else "B" for j in range(len(seq)))
        mask = "0" + "1" * (len(seq) - 1)  # the first residue has no previous one: not scored
        rows.append(f"r{i},{seq},{labels},{mask},{'test' if i % 5 == 0 else 'train'}")
    path = tmp_path / "residues.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def require_modlamp():
    """Skip when the modlamp package (the offline AMP set) is missing; fail under CI."""
    if importlib.util.find_spec("modlamp") is None:
        message = "the modlamp package (offline AMP data) is not installed: pip install modlamp"
        if IN_CI:
            pytest.fail(message + "; under CI it must be installed")
        pytest.skip(message)
