"""Sequence data: FASTA/CSV loaders and their errors, de-duplication, splits, label encoding, real data."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from attnlab.bio.data import (
    LabelEncoder,
    SequenceDataset,
    assign_splits,
    deduplicate,
    filter_length,
    infer_task,
    load_amp,
    load_dataset,
    load_flip_ss3,
    read_csv,
    read_fasta,
    split_indices,
)
from attnlab.errors import DataError


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- FASTA


def test_fasta_header_labels_and_wrapped_sequences(tmp_path):
    path = write(
        tmp_path, "a.fasta", ">p1 label=1 split=train some words\nMKT\nAYI\n\n>p2 label=0 split=test\nmkw\n; comment\n"
    )
    ds = read_fasta(path)
    assert ds.ids == ["p1", "p2"]
    assert ds.sequences == ["MKTAYI", "MKW"]
    assert ds.labels == [1, 0] and ds.task == "binary"
    assert ds.splits == ["train", "test"]


def test_fasta_labels_from_csv(tmp_path):
    fasta = write(tmp_path, "a.fa", ">p1\nMKT\n>p2\nMKWA\n")
    labels = write(tmp_path, "labels.csv", "id,target\np2,3.5\np1,-1.25\nunused,0\n")
    ds = read_fasta(fasta, labels_path=labels)
    assert ds.task == "regression" and ds.labels == [-1.25, 3.5]
    missing = write(tmp_path, "labels2.csv", "id,label\np1,1\n")
    with pytest.raises(DataError, match="'p2'"):
        read_fasta(fasta, labels_path=missing)


def test_fasta_without_labels_is_unlabelled(tmp_path):
    ds = read_fasta(write(tmp_path, "a.fasta", ">p1\nMKT\n"))
    assert ds.labels is None and ds.task is None


@pytest.mark.parametrize(
    "text, expected",
    [
        (">p1 label=1\nMKJT\n", r"record 'p1' \(line 1\).*'J'"),
        (">p1 label=1\nMKT\n>p2 label=0\n>p3 label=1\nMK\n", r"record 'p2' \(line 3\).*empty"),
        ("MKT\n>p1\nMK\n", r"line 1: sequence text before the first '>'"),
        (">p1\nMK\n>p1\nMT\n", r"line 3: record id 'p1' was already used on line 1"),
        (">\nMK\n", r"line 1: a '>' header without an id"),
        (">p1 label=1\nMK\n>p2\nMT\n", r"record 'p2' \(line 3\): the header has no label="),
        (">p1 label=1\nMK*\n", r"record 'p1'.*'\*'.*stop codons"),
        ("", r"contains no FASTA records"),
    ],
)
def test_fasta_errors_name_the_record(tmp_path, text, expected):
    with pytest.raises(DataError, match=expected):
        read_fasta(write(tmp_path, "bad.fasta", text))


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_fasta(tmp_path / "missing.fasta")
    with pytest.raises(DataError, match="is a folder"):
        read_csv(tmp_path)
    latin1 = write(tmp_path, "latin1.csv", "sequence,label\nMKT,1\nMKW,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text \(byte 0xe9 on line 3\)"):
        read_csv(latin1)
    utf16 = write(tmp_path, "u16.fasta", ">p1\nMKT\n".encode("utf-16"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_fasta(utf16)


# ----------------------------------------------------------------------------- CSV


def test_csv_autodetects_columns_and_flip_style_splits(tmp_path):
    text = (
        "id,sequence,ss3,resolved_mask,set,validation\n"
        "a,MKTA,CHHE,0111,train,False\n"
        "b,MKW,CCC,111,train,True\n"
        "c,AAAAA,EECCH,11110,test,False\n"
    )
    ds = read_csv(write(tmp_path, "flip.csv", text))
    assert ds.task == "residue"
    assert ds.labels == ["CHHE", "CCC", "EECCH"]
    assert ds.splits == ["train", "valid", "test"]
    np.testing.assert_array_equal(ds.mask[0], [False, True, True, True])
    assert ds.label_counts() == {"C": 5, "E": 3, "H": 2}  # masked-out C of "a" and H of "c" not counted


def test_csv_explicit_columns_tsv_and_multilabel(tmp_path):
    path = write(tmp_path, "x.tsv", "name\tseq\ttags\nq1\tMKT\tmembrane; secreted\nq2\tMKW\tnucleus\n")
    ds = read_csv(path, id_column="name", sequence_column="seq", label_column="tags")
    assert ds.task == "multilabel"
    assert ds.labels == [("membrane", "secreted"), ("nucleus",)]


@pytest.mark.parametrize(
    "text, options, expected",
    [
        ("sequence,label\nMKT,1\nMKJ,0\n", {}, r"line 3 \(id 'line3'\).*'J'"),
        ("id,sequence,label\na,MKT,1\nb,,0\n", {}, r"line 3 \(id 'b'\).*empty"),
        ("id,sequence,label\na,MKT,1\nb,MKW,\n", {}, r"line 3 \(id 'b'\): the label column 'label' is empty"),
        (
            "id,sequence,ss3\na,MKTA,CHHE\nb,MKW,CC\n",
            {"task": "residue"},
            r"line 3 \(id 'b'\): 2 residue labels for a sequence of length 3",
        ),
        ("id,sequence,ss3,mask\na,MKT,CHH,01\n", {"task": "residue"}, r"line 2 \(id 'a'\): the mask has 2 characters"),
        ("id,sequence,ss3,mask\na,MKT,CHH,0x1\n", {"task": "residue"}, r"mask may only contain 0 and 1"),
        ("id,sequence,label\na,MKT,1,extra\n", {}, r"line 2: 4 fields where the header has 3"),
        ("id,sequence,label,split\na,MKT,1,holdout\n", {}, r"line 2 \(id 'a'\): unknown split 'holdout'"),
        ("id,sequence,label\na,MKT,x\n", {"task": "regression"}, r"line 2 \(id 'a'\): the label 'x' is not a number"),
        ("id,peptide_string,label\na,MKT,1\n", {}, r"no sequence column.*id, peptide_string, label"),
        ("id,sequence,label\na,MKT,1\n", {"label_column": "y2"}, r"no column 'y2'"),
        ("id,sequence,label\na,MKT,1\nb,MKW,2\nc,MKA,3\n", {"task": "binary"}, r"at most 2 classes.*multiclass"),
        ("id,sequence\n", {}, r"no data rows"),
    ],
)
def test_csv_errors_name_the_row(tmp_path, text, options, expected):
    with pytest.raises(DataError, match=expected):
        read_csv(write(tmp_path, "bad.csv", text), **options)


def test_infer_task_rules():
    assert infer_task(["1", "0", "1"], ["MKT", "MK", "MKW"]) == "binary"
    assert infer_task(["a", "b", "c"], ["MKT", "MK", "MKW"]) == "multiclass"
    assert infer_task(["0.5", "1.25"], ["MKT", "MK"]) == "regression"
    assert infer_task([str(i) for i in range(20)], ["MKT"] * 20) == "regression"
    assert infer_task(["CCH", "EE"], ["MKT", "MK"]) == "residue"
    assert infer_task(["a;b", "c"], ["MKT", "MK"]) == "multilabel"


def test_load_dataset_dispatches_on_content(tmp_path):
    fasta_named_txt = write(tmp_path, "seqs.txt", ">p1 label=a\nMKT\n>p2 label=b\nMK\n")
    assert load_dataset(fasta_named_txt).ids == ["p1", "p2"]
    csv_path = write(tmp_path, "seqs.csv", "sequence,label\nMKT,1\n")
    assert load_dataset(csv_path).sequences == ["MKT"]


# ----------------------------------------------------------------------------- cleaning


def small_dataset(labels, task="binary"):
    seqs = ["AAA", "AAA", "CCC", "CCC", "CCC", "DDDD", "EEEEE"]
    return SequenceDataset([f"s{i}" for i in range(7)], seqs, labels, task)


def test_deduplicate_policies():
    ds = small_dataset([1, 1, 0, 1, 1, 0, 1])  # AAA agrees; CCC conflicts 0/1/1
    out, report = deduplicate(ds)
    assert out.sequences == ["AAA", "DDDD", "EEEEE"]
    assert (report.num_input, report.num_distinct, report.num_duplicate_rows) == (7, 4, 3)
    assert (report.num_conflicting_sequences, report.num_conflicting_rows, report.num_output) == (1, 3, 3)
    assert str(report) in out.notes
    first, _ = deduplicate(ds, conflicts="first")
    assert first.sequences == ["AAA", "CCC", "DDDD", "EEEEE"] and first.labels == [1, 0, 0, 1]
    major, _ = deduplicate(ds, conflicts="majority")
    assert major.labels == [1, 1, 0, 1] and major.ids == ["s0", "s3", "s5", "s6"]
    reg = small_dataset([1.0, 1.0, 0.0, 1.0, 2.0, 5.0, 6.0], task="regression")
    mean, _ = deduplicate(reg, conflicts="mean")
    assert mean.labels == [1.0, 1.0, 5.0, 6.0]
    with pytest.raises(DataError, match="regression"):
        deduplicate(ds, conflicts="mean")


def test_filter_length():
    ds = small_dataset([1, 1, 0, 1, 1, 0, 1])
    out, removed = filter_length(ds, min_length=4)
    assert removed == 5 and out.sequences == ["DDDD", "EEEEE"]
    out, removed = filter_length(ds, max_length=4)
    assert removed == 1
    with pytest.raises(DataError, match="no sequence"):
        filter_length(ds, min_length=10)


def test_stratified_split_proportions_and_determinism():
    labels = [0] * 700 + [1] * 200 + [2] * 100
    parts = split_indices(len(labels), (0.8, 0.1, 0.1), seed=3, groups=labels)
    all_idx = np.concatenate(list(parts.values()))
    assert sorted(all_idx.tolist()) == list(range(1000))  # disjoint and complete
    y = np.array(labels)
    for name, frac in zip(("train", "valid", "test"), (0.8, 0.1, 0.1)):
        counts = Counter(y[parts[name]].tolist())
        for cls, total in Counter(labels).items():
            assert abs(counts[cls] - frac * total) <= 1
    again = split_indices(len(labels), (0.8, 0.1, 0.1), seed=3, groups=labels)
    other = split_indices(len(labels), (0.8, 0.1, 0.1), seed=4, groups=labels)
    for name in parts:
        np.testing.assert_array_equal(parts[name], again[name])
    assert not np.array_equal(parts["test"], other["test"])


def test_assign_splits_plain_for_regression_and_bad_fractions():
    ds = SequenceDataset([f"s{i}" for i in range(50)], ["MKT"] * 50, [float(i) for i in range(50)], "regression")
    out = assign_splits(ds, (0.6, 0.2, 0.2), seed=0)
    assert Counter(out.splits) == {"train": 30, "valid": 10, "test": 10}
    assert len(out.split("test")) == 10
    with pytest.raises(DataError, match="summing to 1"):
        assign_splits(ds, (0.6, 0.2, 0.1))
    with pytest.raises(DataError, match="stratify=False"):
        assign_splits(ds, stratify=True)


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "task, labels",
    [
        ("binary", [0, 1, 1, 0]),
        ("multiclass", ["helix", "coil", "strand", "coil"]),
        ("multilabel", [("a", "b"), ("c",), ("a",), ("b", "c")]),
        ("regression", [0.5, -1.0, 2.25, 3.0]),
        ("residue", ["CCH", "HHEE", "C", "EC"]),
    ],
)
def test_label_encoder_round_trip_and_json(task, labels, tmp_path):
    enc = LabelEncoder.fit(labels, task)
    encoded = enc.transform(labels)
    assert enc.inverse_transform(encoded) == labels
    enc.save(tmp_path / "labels.json")
    assert LabelEncoder.load(tmp_path / "labels.json") == enc


def test_label_encoder_shapes_and_unknown_class():
    enc = LabelEncoder.fit(["b", "a", "c"], "multiclass")
    assert enc.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(enc.transform(["c", "a"]), [2, 0])
    multi = LabelEncoder.fit([("x", "y"), ("y",)], "multilabel")
    np.testing.assert_array_equal(multi.transform([("x", "y"), ("y",)]), [[1, 1], [0, 1]])
    res = LabelEncoder.fit(["CHE"], "residue")
    np.testing.assert_array_equal(res.transform(["HEC"])[0], [2, 1, 0])
    with pytest.raises(DataError, match="'d'"):
        enc.transform(["d"])
    with pytest.raises(DataError, match="'X'"):
        res.transform(["CX"])


# ----------------------------------------------------------------------------- real data


def reference_amp(path: Path) -> tuple[list[str], list[int]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["sequence"] for r in rows], [int(r["label"]) for r in rows]


@pytest.mark.shared_data
def test_amp_counts_and_dedup(shared_data):
    seqs, labels = reference_amp(shared_data / "amp_vs_uniprot_modlamp.csv")
    by_seq = defaultdict(set)
    for s, y in zip(seqs, labels):
        by_seq[s].add(y)
    conflicting = sum(len(v) > 1 for v in by_seq.values())

    raw = load_amp(dedup=False)  # read from the installed modlamp package
    assert len(raw) == len(seqs) == 5200
    assert raw.sequences == seqs and raw.labels == labels
    assert raw.label_names == {0: "UniProt", 1: "AMP"}
    from_file = load_amp(shared_data / "amp_vs_uniprot_modlamp.csv", dedup=False)
    assert from_file.sequences == raw.sequences and from_file.labels == raw.labels

    ds = load_amp()
    _, report = deduplicate(raw)
    assert report.num_distinct == len(by_seq) == 4642
    assert report.num_conflicting_sequences == conflicting == 22
    assert report.num_duplicate_rows == 5200 - 4642
    assert len(ds) == 4642 - 22 and len(set(ds.sequences)) == len(ds)


def test_amp_matches_modlamp_loader():
    datasets = pytest.importorskip("modlamp.datasets")
    bunch = datasets.load_AMPvsUniProt()
    raw = load_amp(dedup=False)
    assert raw.sequences == [s.strip() for s in bunch.sequences.tolist()]
    assert raw.labels == bunch.target.tolist()


@pytest.mark.shared_data
def test_flip_ss3(shared_data):
    path = shared_data / "flip_secondary_structure_ss3.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected = Counter(
        "test" if r["set"] == "test" else "valid" if r["validation"] == "True" else "train" for r in rows
    )
    ds = load_flip_ss3(path)
    assert len(ds) == len(rows)
    assert Counter(ds.splits) == expected
    assert ds.task == "residue"
    assert sum(int(m.sum()) for m in ds.mask) == sum(r["resolved_mask"].count("1") for r in rows)
    enc = LabelEncoder.fit(ds.labels, "residue")
    assert enc.classes == ["C", "E", "H"]


def test_binary_encoder_keeps_zero_one_meaning():
    assert LabelEncoder.fit([1, 1], "binary").classes == [0, 1]
    np.testing.assert_array_equal(LabelEncoder.fit([1, 1], "binary").transform([1, 1]), [1, 1])
    with pytest.raises(DataError, match="exactly two classes"):
        LabelEncoder.fit(["AMP", "AMP"], "binary")


def test_dna_fasta_and_dataset_validation(tmp_path):
    ds = read_fasta(write(tmp_path, "dna.fa", ">g1 label=a\nacgtn\n>g2 label=b\nACGG\n"), alphabet="dna")
    assert ds.sequences == ["ACGTN", "ACGG"] and ds.task == "binary"
    with pytest.raises(DataError, match="record 'g1'.*not valid dna letters: 'U'"):
        read_fasta(write(tmp_path, "rna.fa", ">g1\nACGU\n"), alphabet="dna")
    with pytest.raises(DataError, match="2 labels for 3 sequences"):
        SequenceDataset(["a", "b", "c"], ["MK", "MK", "MK"], [0, 1], "binary")
    with pytest.raises(DataError, match="without a task"):
        SequenceDataset(["a"], ["MK"], [0])
    with pytest.raises(DataError, match="record 'a' has 1 residue labels"):
        SequenceDataset(["a"], ["MK"], ["C"], "residue")
    with pytest.raises(DataError, match="has no splits"):
        SequenceDataset(["a"], ["MK"]).split("train")


# ----------------------------------------------------------------------------- missing / non-finite labels

BAD_LABELS = ["", "nan", "NaN", "inf", "-inf", "NA", "N/A", "null", "None", "NULL", "n/a", "1e999"]


def one_line_naming(message: str, *parts: str) -> None:
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)


@pytest.mark.parametrize("bad", BAD_LABELS)
def test_csv_bad_label_is_named_or_dropped_and_counted(tmp_path, bad):
    path = write(tmp_path, "b.csv", f"id,sequence,label\na,MKT,1\nb,MKW,{bad}\nc,MKA,0\nd,MKC,1\n")
    with pytest.raises(DataError) as err:
        read_csv(path)
    one_line_naming(str(err.value), "b.csv", "line 3", "id 'b'", "bad_labels='drop'", "--drop-bad-labels")
    ds = read_csv(path, bad_labels="drop")
    assert ds.ids == ["a", "c", "d"] and ds.task == "binary" and ds.labels == [1, 0, 1]
    (note,) = [n for n in ds.notes if n.startswith("dropped")]
    assert "dropped 1 of 4 records" in note and "line 3 (id 'b')" in note


@pytest.mark.parametrize("bad", BAD_LABELS)
def test_fasta_bad_header_label_is_named_or_dropped_and_counted(tmp_path, bad):
    path = write(tmp_path, "b.fasta", f">p1 label=0.5\nMKTAY\n>p2 label={bad}\nMKW\n>p3 label=1.5\nMKAAY\n")
    with pytest.raises(DataError) as err:
        read_fasta(path)
    one_line_naming(str(err.value), "b.fasta", "record 'p2'", "line 3", "bad_labels='drop'")
    ds = read_fasta(path, bad_labels="drop")
    assert ds.ids == ["p1", "p3"] and ds.task == "regression" and ds.labels == [0.5, 1.5]
    assert any("dropped 1 of 3 records" in n and "record 'p2' (line 3)" in n for n in ds.notes)


@pytest.mark.parametrize("bad", ["", "nan", "None", "-inf"])
def test_fasta_bad_label_in_a_joined_csv(tmp_path, bad):
    fasta = write(tmp_path, "a.fa", ">p1\nMKT\n>p2\nMKWA\n>p3\nMKA\n>p4\nMKK\n")
    labels = write(tmp_path, "labels.csv", f"id,label\np1,a\np2,{bad}\np3,b\n")  # p4 has no row
    with pytest.raises(DataError) as err:
        read_fasta(fasta, labels_path=labels)
    one_line_naming(str(err.value), "a.fa", "'p4'")  # the record without a row is named first
    labels4 = write(tmp_path, "labels4.csv", f"id,label\np1,a\np2,{bad}\np3,b\np4,a\n")
    with pytest.raises(DataError) as err:
        read_fasta(fasta, labels_path=labels4)
    one_line_naming(str(err.value), "a.fa", "record 'p2'", "labels4.csv", "line 3")
    ds = read_fasta(fasta, labels_path=labels, bad_labels="drop")
    assert ds.ids == ["p1", "p3"] and ds.labels == ["a", "b"]
    assert any("dropped 2 of 4 records" in n for n in ds.notes)


def test_missing_label_key_is_dropped_too_and_nan_never_becomes_a_class(tmp_path):
    path = write(tmp_path, "k.fasta", ">p1 label=x\nMKT\n>p2\nMKW\n>p3 label=y\nMKA\n>p4 label=z;nan\nMKC\n")
    with pytest.raises(DataError, match=r"record 'p2' \(line 3\): the header has no label= value"):
        read_fasta(path)
    ds = read_fasta(path, bad_labels="drop")
    assert ds.ids == ["p1", "p3"] and ds.task == "binary"
    assert "nan" not in {str(c).lower() for c in ds.label_counts()}
    with pytest.raises(DataError, match="unknown bad_labels policy 'skip'"):
        read_fasta(path, bad_labels="skip")
    everything_bad = write(tmp_path, "all.csv", "sequence,label\nMKT,nan\nMKW,\n")
    with pytest.raises(DataError, match="all 2 records have a missing or non-finite label"):
        read_csv(everything_bad, bad_labels="drop")


def test_is_missing_label_and_dataset_validation():
    from attnlab.bio.data import is_missing_label

    for value in [None, float("nan"), float("inf"), np.float32("nan"), *BAD_LABELS, " NaN "]:
        assert is_missing_label(value), value
    for value in [0, 1, 2.5, "0", "AMP", "nano", "none of these", "1e5"]:
        assert not is_missing_label(value), value
    with pytest.raises(DataError, match="record 'b' has a missing or non-finite label nan"):
        SequenceDataset(["a", "b"], ["MK", "MT"], [0.5, float("nan")], "regression")
    with pytest.raises(DataError, match="record 'a' has a missing or non-finite label None"):
        SequenceDataset(["a"], ["MK"], [None], "binary")


def test_load_amp_style_file_drops_bad_labels(tmp_path):
    path = write(tmp_path, "amp.csv", "4,1,UniProt,AMP\nMKTAYIAK,1\nGLFDIVKK,nan\nMKWVTFIS,0\nKKLLKKLL,1\n")
    with pytest.raises(DataError, match=r"amp.csv', line 3: the label 'nan' is missing"):
        load_amp(path)
    ds = load_amp(path, bad_labels="drop", dedup=False)
    assert len(ds) == 3 and any("dropped 1 of 4 records" in n for n in ds.notes)


def test_bad_letters_name_the_line_and_residue(tmp_path):
    path = write(tmp_path, "w.fasta", ">p1 label=1\nMKTA\nYIJK\n>p2 label=0\nMK\n")
    with pytest.raises(DataError, match=r"record 'p1' \(line 1\).*'J' \(first at residue 7, line 3\)"):
        read_fasta(path)
    with pytest.raises(DataError, match=r"line 3 \(id 'b'\).*'J' \(first at residue 2\)"):
        read_csv(write(tmp_path, "w.csv", "id,sequence,label\na,MKT,1\nb,MJT,0\n"))
