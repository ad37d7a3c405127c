"""`attnlab probe` end to end (in-process, on the modlamp AMP set and small files) and its one-line errors."""

from __future__ import annotations

import json

import pytest

from attnlab.cli import main

QUICK = ["--epochs", "10", "--no-progress"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_amp_end_to_end_with_the_onehot_control(require_modlamp, tmp_path, capsys):
    out_dir = tmp_path / "amp"
    code, out, err = run(
        capsys,
        "probe",
        "--data",
        "amp",
        "--task",
        "seq-class",
        "--embedder",
        "onehot",
        "--probe",
        "linear",
        "--seeds",
        "2",
        "--max-sequences",
        "200",
        "--out",
        str(out_dir),
        "--cache-dir",
        str(tmp_path / "c"),
        *QUICK,
    )
    assert code == 0, err
    assert "| onehot | linear | mean |" in out and "primary metric mcc" in out
    results = json.loads((out_dir / "results.json").read_text())
    assert results["data"]["num_sequences"] == 200 and results["classes"] == ["UniProt", "AMP"]
    assert len(results["runs"]) == 2
    for name in (
        "results.md",
        "confusion_matrix.png",
        "pca.png",
        "probes/seed0/probe.json",
        "probes/seed1/embedder.json",
    ):
        assert (out_dir / name).is_file(), name


def test_amp_with_a_tiny_checkpoint_twice_hits_the_cache(require_modlamp, tmp_path, capsys, tiny_protein_checkpoint):
    args = [
        "probe",
        "--data",
        "amp",
        "--task",
        "seq-class",
        "--embedder",
        str(tiny_protein_checkpoint),
        "--pool",
        "attn",
        "--seeds",
        "1",
        "--max-sequences",
        "120",
        "--cache-dir",
        str(tmp_path / "c"),
        *QUICK,
    ]
    code, out, err = run(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert "attention | attn |" in out and "0 hit(s), 3 miss(es)" in out
    code, out, err = run(capsys, *args, "--probe", "mlp", "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert "attention-mlp | attn |" in out and "3 hit(s), 0 miss(es)" in out


def test_residue_task_from_a_file(residue_csv, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "probe",
        "--data",
        str(residue_csv),
        "--task",
        "residue-class",
        "--embedder",
        "onehot",
        "--probe",
        "mlp",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "r"),
        "--no-cache",
        *QUICK,
    )
    assert code == 0, err
    assert "| onehot | mlp | none |" in out
    assert json.loads((tmp_path / "r" / "results.json").read_text())["task"] == "residue"


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--embedder", "word2vec"], "unknown embedder 'word2vec'"),
        (["--embedder", "composition", "--pool", "cls"], "pool 'cls' is not supported by the composition embedder"),
        (["--embedder", "onehot", "--seeds", "0"], "--seeds must be a whole number from 1 to 100"),
        (["--embedder", "onehot", "--seeds", "three"], "--seeds must be a whole number from 1 to 100, got 'three'"),
        (["--embedder", "onehot", "--pool", "median"], "unknown pool 'median'"),
        (["--embedder", "onehot", "--finetune"], "no model to tune"),
    ],
)
def test_bad_options_are_one_line_errors(class_csv, tmp_path, capsys, extra, words):
    code, out, err = run(
        capsys, "probe", "--data", str(class_csv), "--task", "seq-class", "--out", str(tmp_path / "x"), *extra, *QUICK
    )
    assert code == 2
    assert err.startswith("attnlab: error:") and err.count("\n") == 1
    assert words in err


def test_task_data_mismatch_and_wrong_checkpoints(class_csv, residue_csv, tmp_path, capsys):
    from attnlab.models.gpt import GPT, GPTConfig
    from attnlab.models.registry import save_model

    code, _, err = run(
        capsys,
        "probe",
        "--data",
        str(class_csv),
        "--task",
        "residue-class",
        "--embedder",
        "onehot",
        "--out",
        str(tmp_path / "x"),
        *QUICK,
    )
    assert code == 2 and "use --task seq-class" in err and err.count("\n") == 1
    code, _, err = run(
        capsys,
        "probe",
        "--data",
        str(residue_csv),
        "--task",
        "residue-class",
        "--embedder",
        "onehot",
        "--pool",
        "mean",
        "--out",
        str(tmp_path / "x"),
        *QUICK,
    )
    assert code == 2 and "--pool does not apply to residue-class" in err
    save_model(GPT(GPTConfig.from_name("nano", vocab_size=10)), tmp_path / "gpt")
    code, _, err = run(
        capsys,
        "probe",
        "--data",
        str(class_csv),
        "--task",
        "seq-class",
        "--embedder",
        str(tmp_path / "gpt"),
        "--out",
        str(tmp_path / "x"),
        *QUICK,
    )
    assert code == 2 and "not a protein encoder" in err and err.count("\n") == 1
    code, _, err = run(
        capsys,
        "probe",
        "--data",
        str(tmp_path / "missing.csv"),
        "--task",
        "seq-class",
        "--embedder",
        "onehot",
        "--out",
        str(tmp_path / "x"),
        *QUICK,
    )
    assert code == 2 and err.startswith("attnlab: error:")


def test_usage_errors(capsys):
    code, _, err = run(capsys, "probe", "--data", "amp", "--task", "sequence", "--embedder", "onehot", "--out", "x")
    assert code == 2 and "invalid choice: 'sequence'" in err


@pytest.mark.parametrize("bad", ["", "nan", "NaN", "inf", "-inf", "NA", "N/A", "null", "None"])
def test_bad_labels_are_one_line_errors_or_dropped_with_the_flag(class_csv, tmp_path, capsys, bad):
    lines = class_csv.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + f",{bad}"  # record s4 on file line 6
    lines[9] = lines[9].rsplit(",", 1)[0] + f",{bad}"  # record s8 on file line 10
    data = tmp_path / "bad.csv"
    data.write_text("\n".join(lines) + "\n")
    args = [
        "probe",
        "--data",
        str(data),
        "--task",
        "seq-class",
        "--embedder",
        "composition",
        "--seeds",
        "1",
        "--no-cache",
        "--no-save-probes",
        *QUICK,
    ]
    code, _, err = run(capsys, *args, "--out", str(tmp_path / "x"))
    assert code == 2 and err.startswith("attnlab: error:") and err.count("\n") == 1
    assert "bad.csv" in err and "line 6 (id 's4')" in err and "--drop-bad-labels" in err
    code, out, err = run(capsys, *args, "--out", str(tmp_path / "y"), "--drop-bad-labels")
    assert code == 0, err
    assert "dropped 2 of 60 records with a missing or non-finite label" in out
    results = json.loads((tmp_path / "y" / "results.json").read_text())
    assert results["data"]["num_sequences"] == 58 and sorted(results["classes"]) == ["poor", "rich"]
    assert any("dropped 2 of 60 records" in n and "line 6 (id 's4')" in n for n in results["data"]["notes"])
    assert "dropped 2 of 60 records" in (tmp_path / "y" / "results.md").read_text()


def test_a_nan_number_is_named_not_a_task_mismatch(tmp_path, capsys):
    from .conftest import random_sequences

    rows = ["id,sequence,label"] + [
        f"s{i},{seq},{i / 7:.3f}" for i, seq in enumerate(random_sequences(40, 8, 20, seed=5))
    ]
    rows[3] = rows[3].rsplit(",", 1)[0] + ",NaN"
    data = tmp_path / "reg.csv"
    data.write_text("\n".join(rows) + "\n")
    code, _, err = run(
        capsys,
        "probe",
        "--data",
        str(data),
        "--task",
        "seq-reg",
        "--embedder",
        "composition",
        "--out",
        str(tmp_path / "x"),
        "--no-cache",
        *QUICK,
    )
    assert code == 2 and err.count("\n") == 1
    assert "line 4 (id 's2')" in err and "'NaN'" in err and "does not fit" not in err
