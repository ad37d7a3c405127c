"""Masked-LM pretraining: BERT's masking statistics, batch sources, and training end to end."""

import json

import numpy as np
import pytest
from scipy import stats

from attnlab.cli import main
from attnlab.models.registry import load_model
from attnlab.train.mlm import (
    BERT_SPECIALS,
    MaskingConfig,
    MLMSpecials,
    SequenceMLMData,
    TextMLMData,
    mask_tokens,
    sequence_mlm_data,
    train_masked_lm,
)

MASK, CLS, SEP, PAD = 4, 2, 3, 0
SPECIALS = (0, 1, 2, 3, 4)
RANDOM_IDS = np.arange(5, 55)  # 50 ordinary tokens
P_SMALL = 1e-6  # significance of the statistical tests: a correct implementation fails one in a million runs


def chi_square_ok(observed, expected_probs) -> bool:
    observed = np.asarray(observed, dtype=float)
    expected = observed.sum() * np.asarray(expected_probs, dtype=float)
    return stats.chisquare(observed, expected).pvalue > P_SMALL


def corpus_ids(rng, rows=200, cols=500):
    ids = rng.integers(5, 55, size=(rows, cols))
    ids[:, 0], ids[:, -1] = CLS, SEP
    ids[::7, -50:] = PAD  # some padding
    return ids


@pytest.mark.parametrize(
    "rule",
    [MaskingConfig(), MaskingConfig(mask_prob=0.3, mask_token_share=0.5, random_token_share=0.3)],
    ids=["bert-15-80-10-10", "protein-benchmark-30-50-30-20"],
)
def test_masking_statistics_follow_the_rule(rule):
    rng = np.random.default_rng(0)
    ids = corpus_ids(rng)
    out, labels = mask_tokens(
        ids, np.random.default_rng(1), mask_id=MASK, special_ids=SPECIALS, random_ids=RANDOM_IDS, masking=rule
    )
    maskable = ~np.isin(ids, SPECIALS)
    chosen = labels != -100
    n, k = int(maskable.sum()), int(chosen.sum())
    # mask_prob of the maskable tokens (BERT: 15%), tested with the binomial distribution
    assert stats.binomtest(k, n, rule.mask_prob).pvalue > P_SMALL
    # among the chosen: [MASK] / a different random token / unchanged, where "unchanged" also
    # catches the random draws that hit the original token (probability 1/50 of the random share)
    is_mask = out[chosen] == MASK
    unchanged = out[chosen] == ids[chosen]
    other = ~is_mask & ~unchanged
    K = len(RANDOM_IDS)
    mask_share, random_share = rule.mask_token_share, rule.random_token_share
    keep_share = 1.0 - mask_share - random_share
    assert chi_square_ok(
        [is_mask.sum(), other.sum(), unchanged.sum()],
        [mask_share, random_share * (1 - 1 / K), keep_share + random_share / K],
    )
    # random replacements are uniform over the ordinary tokens
    replaced = out[chosen][other]
    counts = np.bincount(replaced - 5, minlength=K)
    assert chi_square_ok(counts, np.full(K, 1 / K))
    # labels hold the original ids at chosen positions, nothing elsewhere
    assert np.array_equal(labels[chosen], ids[chosen])
    assert np.array_equal(out[~chosen], ids[~chosen])


def test_special_and_padding_tokens_are_never_masked():
    rng = np.random.default_rng(2)
    ids = corpus_ids(rng, rows=50, cols=64)
    ids[:, 10] = MASK  # even literal [MASK] tokens in the input are left alone
    for seed in range(5):
        out, labels = mask_tokens(
            ids, np.random.default_rng(seed), mask_id=MASK, special_ids=SPECIALS, random_ids=RANDOM_IDS
        )
        special = np.isin(ids, SPECIALS)
        assert np.all(labels[special] == -100)
        assert np.array_equal(out[special], ids[special])
        assert not np.isin(out[labels != -100], [CLS, SEP, PAD]).any()  # random draws are never specials


def test_masking_is_deterministic_given_the_generator():
    ids = corpus_ids(np.random.default_rng(3), rows=8, cols=40)
    a = mask_tokens(ids, np.random.default_rng(7), mask_id=MASK, special_ids=SPECIALS, random_ids=RANDOM_IDS)
    b = mask_tokens(ids, np.random.default_rng(7), mask_id=MASK, special_ids=SPECIALS, random_ids=RANDOM_IDS)
    c = mask_tokens(ids, np.random.default_rng(8), mask_id=MASK, special_ids=SPECIALS, random_ids=RANDOM_IDS)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_every_row_gets_at_least_one_prediction():
    ids = np.array([[CLS, 7, 8, SEP, PAD], [CLS, 9, SEP, PAD, PAD], [CLS, SEP, PAD, PAD, PAD]])
    rule = MaskingConfig(mask_prob=0.01)
    for seed in range(20):
        _, labels = mask_tokens(
            ids, np.random.default_rng(seed), mask_id=MASK, special_ids=SPECIALS, random_ids=RANDOM_IDS, masking=rule
        )
        chosen = (labels != -100).sum(axis=1)
        assert chosen[0] >= 1 and chosen[1] == 1 and chosen[2] == 0  # the last row has nothing to mask


def test_masking_config_validation():
    from attnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="mask_prob"):
        MaskingConfig(mask_prob=0.0)
    with pytest.raises(ConfigError, match="must not exceed 1"):
        MaskingConfig(mask_token_share=0.95, random_token_share=0.1)


SPECIALS_OBJ = MLMSpecials(cls_id=CLS, sep_id=SEP, pad_id=PAD, mask_id=MASK, special_ids=SPECIALS)


def test_compact_ids_give_the_same_int64_batches():
    ids = np.random.default_rng(4).integers(5, 40, size=2000)
    wide = TextMLMData(ids, 16, SPECIALS_OBJ, val_fraction=0.1)
    compact = TextMLMData(ids.astype(np.uint8), 16, SPECIALS_OBJ, val_fraction=0.1)
    assert compact.splits["train"].dtype == np.uint8  # held compact, not copied to int64
    a, b = wide.train_batch(6, np.random.default_rng(0)), compact.train_batch(6, np.random.default_rng(0))
    assert b["input_ids"].dtype == np.int64 and np.array_equal(a["input_ids"], b["input_ids"])
    assert np.array_equal(a["labels"], b["labels"])
    for x, y in zip(wide.eval_batches(4, 2, "val"), compact.eval_batches(4, 2, "val")):
        assert np.array_equal(x["input_ids"], y["input_ids"]) and np.array_equal(x["labels"], y["labels"])


def test_text_windows_are_framed_and_eval_batches_fixed():
    ids = np.random.default_rng(4).integers(5, 40, size=2000)
    data = TextMLMData(ids, 16, SPECIALS_OBJ, val_fraction=0.1)
    batch = data.train_batch(6, np.random.default_rng(0))
    assert batch["input_ids"].shape == (6, 16) and "attention_mask" not in batch
    assert np.all(batch["input_ids"][:, 0] == CLS) and np.all(batch["input_ids"][:, -1] == SEP)
    assert np.all(batch["labels"][:, [0, -1]] == -100)
    # unmasked window content is a contiguous slice of the train split
    row_labels, row_ids = batch["labels"][0], batch["input_ids"][0].copy()
    row_ids[row_labels != -100] = row_labels[row_labels != -100]
    train = data.splits["train"]
    starts = [s for s in range(len(train) - 14 + 1) if np.array_equal(train[s : s + 14], row_ids[1:-1])]
    assert starts
    first = data.eval_batches(4, 3, "val", seed=5)
    again = TextMLMData(ids, 16, SPECIALS_OBJ, val_fraction=0.1).eval_batches(4, 3, "val", seed=5)
    for a, b in zip(first, again):
        assert np.array_equal(a["input_ids"], b["input_ids"]) and np.array_equal(a["labels"], b["labels"])
    assert not np.array_equal(first[0]["input_ids"], first[1]["input_ids"])


def test_sequence_batches_crop_pad_and_mask():
    train = [list(range(5, 5 + n)) for n in (3, 30, 8)]
    val = [[5, 6, 7], [8, 9]]
    data = SequenceMLMData(train, val, max_seq_len=12, specials=SPECIALS_OBJ)
    batch = data.train_batch(16, np.random.default_rng(0))
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert ids.shape[1] <= 12 and ids.shape == mask.shape == labels.shape
    for row in range(16):
        n = int(mask[row].sum())
        assert ids[row, 0] == CLS and ids[row, n - 1] == SEP and np.all(ids[row, n:] == PAD)
        assert np.all(labels[row, n - 1 :] == -100) and labels[row, 0] == -100
        assert (labels[row] != -100).sum() >= 1
    evals = data.eval_batches(2, 2, "val", seed=0)
    assert evals[0]["attention_mask"].sum(axis=1).tolist() == [5, 4]  # [CLS] + 3 + [SEP], [CLS] + 2 + [SEP]


def test_sequence_mlm_data_from_protein_strings():
    from attnlab.bio.tokenizers import ProteinTokenizer

    tokenizer = ProteinTokenizer()
    sequences = ["MKTAYIAKQR", "GLWSKIKEVG", "ACDEFGHIKL", "MNPQRSTVWY", "KKLLKKLLKK"]
    data = sequence_mlm_data(sequences, tokenizer, max_seq_len=8, val_fraction=0.2, seed=0)
    assert len(data.splits["train"]) == 4 and len(data.splits["val"]) == 1
    assert (
        data.specials.mask_id == 32
        and data.specials.cls_id == 0
        and data.specials.sep_id == 2
        and data.specials.pad_id == 1
    )
    batch = data.train_batch(4, np.random.default_rng(0))
    assert batch["input_ids"].shape == (4, 8)  # 10 residues cropped to 6 + <cls> + <eos>
    assert set(np.unique(data.random_ids)) <= set(range(4, 29))  # only residues seen in training


def tiny_text(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("the cat sat on the mat and the dog sat on the log. " * 60)
    return path


def test_masked_lm_training_end_to_end(tmp_path):
    from attnlab.models.encoder import EncoderConfig
    from attnlab.train.recipes import DataConfig
    from attnlab.train.trainer import TrainConfig

    out = tmp_path / "run"
    results = train_masked_lm(
        out,
        data=DataConfig(source=str(tiny_text(tmp_path)), tokenizer="char"),
        model=EncoderConfig.from_name("mini", max_seq_len=24),
        train=TrainConfig(
            max_iters=60, batch_size=16, lr=3e-3, warmup_iters=5, eval_interval=30, eval_iters=4, progress=False, seed=0
        ),
        write_plots=False,
    )
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 60
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5  # it learns
    assert (
        0.0 <= results["val_masked_accuracy"] <= 1.0
        and results["val_masked_accuracy"] > evals[0]["val_masked_accuracy"]
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved["val_loss"] == results["val_loss"]
    model, tokenizer = load_model(out, expect="encoder")
    assert tokenizer.special_tokens == {t: i for i, t in enumerate(BERT_SPECIALS)}
    assert (model.config.head, model.config.mask_token_id, model.config.vocab_size) == ("mlm", 4, tokenizer.vocab_size)


def test_train_mlm_cli_with_resume(tmp_path, capsys):
    data = str(tiny_text(tmp_path))
    out = str(tmp_path / "run")
    common = [
        "train",
        "--objective",
        "mlm",
        "--data",
        data,
        "--out",
        out,
        "--tokenizer",
        "word",
        "--train.batch_size=8",
        "--train.eval_iters=2",
        "--train.progress=false",
    ]
    assert (
        main([*common, "--preset", "mini", "--max-iters", "6", "--train.eval_interval=3", "--mask.mask_prob=0.2"]) == 0
    )
    assert "masked-token accuracy" in capsys.readouterr().out
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["objective"] == "mlm" and run["mask"]["mask_prob"] == 0.2 and run["model"]["num_layers"] == 2
    _, tokenizer = load_model(out)
    assert tokenizer.kind == "word" and tokenizer.mask_id is not None and tokenizer.cls_id is not None
    assert main([*common, "--max-iters", "9", "--resume"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["step"] == 9
    # without --resume an existing run is protected
    assert main([*common, "--max-iters", "9"]) == 2
    assert "already holds a trained model" in capsys.readouterr().err


def test_train_mlm_cli_on_protein_fasta(tmp_path):
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    fasta = tmp_path / "proteins.fasta"
    fasta.write_text("".join(f">p{i}\n{''.join(rng.choice(letters, size=rng.integers(8, 40)))}\n" for i in range(40)))
    out = tmp_path / "prot"
    code = main(
        [
            "train",
            "--objective",
            "mlm",
            "--data",
            str(fasta),
            "--tokenizer",
            "protein",
            "--out",
            str(out),
            "--max-iters",
            "4",
            "--model.num_layers=1",
            "--model.max_seq_len=24",
            "--train.batch_size=4",
            "--train.eval_iters=2",
            "--train.progress=false",
        ]
    )
    assert code == 0
    model, tokenizer = load_model(out, expect="encoder")
    assert tokenizer.kind == "protein"
    c = model.config  # the protein-small preset (ESM-2 style) is the default for protein data
    assert (c.norm_first, c.positional, c.vocab_size, c.pad_token_id, c.mask_token_id) == (True, "rotary", 33, 1, 32)
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["kind"] == "sequences" and run["data"]["num_sequences"] == 40


def test_train_mlm_bad_inputs(tmp_path, capsys):
    out = str(tmp_path / "x")
    base = ["train", "--objective", "mlm", "--out", out, "--max-iters", "1", "--train.progress=false"]
    assert main([*base, "--tokenizer", "protein"]) == 2
    assert "needs sequence data" in capsys.readouterr().err
    assert main([*base, "--data", str(tiny_text(tmp_path)), "--model.head=sequence"]) == 2
    assert "model.head=mlm" in capsys.readouterr().err
    assert main([*base, "--engine", "numpy"]) == 2
    assert "torch engine" in capsys.readouterr().err
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\nMKT*J\n>b\nMKV\n")
    assert main([*base, "--data", str(bad), "--tokenizer", "protein"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnlab: error:") and "\n" not in err and "'*'" in err
    assert main([*base, "--data", str(tiny_text(tmp_path)), "--mask.nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err
