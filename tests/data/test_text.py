"""Corpora, downloads (on local files via file:// URLs) and language-model batches."""

import dataclasses
import hashlib

import numpy as np
import pytest

from attnlab.data import download, text
from attnlab.data.text import CORPORA, LMData, load_text
from attnlab.errors import DataError, DownloadError


def test_embedded_default_corpus_is_offline_and_substantial():
    src = load_text()
    assert src.name == "pydoc"
    assert len(src.text) > 300_000
    assert "assert" in src.text
    assert load_text("python-docs").text == src.text


def _fake_remote(tmp_path, content: bytes):
    f = tmp_path / "remote.txt"
    f.write_bytes(content)
    return f.as_uri(), hashlib.sha256(content).hexdigest()


def test_fetch_downloads_verifies_and_caches(tmp_path):
    url, digest = _fake_remote(tmp_path, b"hello world\n")
    path = download.fetch(url, digest, "hello.txt")
    assert path.read_bytes() == b"hello world\n"
    (tmp_path / "remote.txt").unlink()  # the second call must not touch the source
    assert download.fetch(url, digest, "hello.txt") == path


def test_fetch_rejects_a_bad_checksum_and_keeps_nothing(tmp_path):
    url, _ = _fake_remote(tmp_path, b"tampered\n")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download.fetch(url, "0" * 64, "bad.txt")
    from attnlab.utils import cache_dir

    assert not (cache_dir() / "downloads" / "bad.txt").exists()
    assert not list((cache_dir() / "downloads").glob(".bad.txt*"))


def test_fetch_replaces_a_corrupted_cache_entry(tmp_path):
    url, digest = _fake_remote(tmp_path, b"good content\n")
    path = download.fetch(url, digest, "c.txt")
    path.write_bytes(b"bit rot")
    assert download.fetch(url, digest, "c.txt").read_bytes() == b"good content\n"


def test_fetch_errors_clearly_when_unreachable_or_offline(tmp_path, monkeypatch):
    with pytest.raises(DownloadError, match="could not download"):
        download.fetch((tmp_path / "missing.txt").as_uri(), None, "m.txt")
    monkeypatch.setenv("ATTNLAB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="ATTNLAB_OFFLINE"):
        download.fetch("https://example.invalid/x.txt", None, "x.txt")


def test_named_corpus_downloads_on_demand(tmp_path, monkeypatch, shared_data):
    local = shared_data / "tinyshakespeare.txt"
    corpus = dataclasses.replace(CORPORA["shakespeare"], url=local.as_uri())
    monkeypatch.setitem(text.CORPORA, "shakespeare", corpus)
    src = load_text("shakespeare")
    assert src.text.startswith("First Citizen:")
    assert len(src.text) == 1_115_394
    assert hashlib.sha256(src.text.encode()).hexdigest() == CORPORA["shakespeare"].sha256


def test_text_file_with_bom_and_crlf(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes("\ufeffline one\r\nline two\r\n".encode("utf-8"))
    assert load_text(f).text == "line one\nline two\n"


def test_lm_data_split_and_windows():
    ids = np.arange(1000)
    data = LMData(ids, seq_len=8, val_fraction=0.1)
    assert len(data.splits["train"]) == 900 and data.splits["val"][0] == 900
    batch = data.train_batch(5, np.random.default_rng(0))
    assert batch["input_ids"].shape == (5, 8)
    np.testing.assert_array_equal(batch["targets"], batch["input_ids"] + 1)  # next token
    assert batch["input_ids"].max() < 900  # training windows never touch validation text
    e1 = data.eval_batches(4, 3)
    e2 = data.eval_batches(4, 3)
    assert all((a["input_ids"] == b["input_ids"]).all() for a, b in zip(e1, e2))
    assert all(b["input_ids"].min() >= 900 for b in e1)
    swept = np.concatenate([b["input_ids"].ravel() for b in data.sweep("val", 4)])
    assert len(swept) == (99 // 8) * 8 and len(set(swept.tolist())) == len(swept)  # each window once


def test_lm_data_too_short():
    with pytest.raises(DataError, match="too short"):
        LMData(np.arange(50), seq_len=8)
