"""The protein probing benchmark's helpers: its FLIP probe sets (every probe sees the same
validation and test rows, and a smaller training set is part of a larger one) and its
masking recipes."""

import sys
from pathlib import Path

import pytest

from attnlab.bio.data import SequenceDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_bio import describe_masking, flip_probe_sets, masking_recipe  # noqa: E402


def _toy(n_train: int = 40, n_valid: int = 12, n_test: int = 7) -> SequenceDataset:
    splits = ["train"] * n_train + ["valid"] * n_valid + ["test"] * n_test
    ids = [f"s{i}" for i in range(len(splits))]
    seqs = ["ACDEFGHIK"[: 3 + i % 6] for i in range(len(splits))]
    labels = ["HEC"[i % 3] * len(s) for i, s in enumerate(seqs)]
    return SequenceDataset(ids, seqs, labels, "residue", splits=splits, name="toy")


def _ids(dataset: SequenceDataset, split: str) -> set[str]:
    return {i for i, s in zip(dataset.ids, dataset.splits) if s == split}


def test_probe_sets_share_validation_and_test_rows_and_nest_training_rows():
    full = _toy()
    sets = flip_probe_sets(full, {"mlp": 0, "transformer": 10, "tiny": 4}, valid_size=5)
    assert _ids(sets["mlp"], "train") == _ids(full, "train")  # 0 = every train sequence
    assert len(_ids(sets["transformer"], "train")) == 10 and len(_ids(sets["tiny"], "train")) == 4
    assert _ids(sets["tiny"], "train") < _ids(sets["transformer"], "train") < _ids(sets["mlp"], "train")
    valid = _ids(sets["mlp"], "valid")
    assert len(valid) == 5 and valid <= _ids(full, "valid")
    for dataset in sets.values():
        assert _ids(dataset, "valid") == valid
        assert _ids(dataset, "test") == _ids(full, "test")  # every test sequence is scored


def test_probe_sets_are_deterministic_and_keep_whole_splits_when_asked():
    full = _toy()
    first = flip_probe_sets(full, {"transformer": 10}, valid_size=5)["transformer"]
    again = flip_probe_sets(full, {"transformer": 10}, valid_size=5)["transformer"]
    assert first.ids == again.ids
    whole = flip_probe_sets(full, {"mlp": 0}, valid_size=0)["mlp"]
    assert whole.ids == full.ids and whole.labels == full.labels
    assert not any("subset" in note for note in whole.notes)


def test_masking_recipes_and_overrides():
    flip = masking_recipe("flip", {"mask_prob": None, "mask_token_share": None, "random_token_share": None})
    assert flip == {"mask_prob": 0.3, "mask_token_share": 0.5, "random_token_share": 0.3}
    assert describe_masking(flip) == "30% masking (50% <mask>, 30% random, 20% unchanged)"
    amp = masking_recipe("amp", {"mask_prob": 0.2, "mask_token_share": None, "random_token_share": None})
    assert amp == {
        "mask_prob": 0.2,
        "mask_token_share": 0.8,
        "random_token_share": 0.1,
    }  # BERT's split, rate overridden
    with pytest.raises(SystemExit, match="mask_token_share"):
        masking_recipe("flip", {"mask_prob": None, "mask_token_share": 0.9, "random_token_share": None})
