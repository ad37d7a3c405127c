"""Compact token ids for large corpora: dtype choice, slice-wise encoding, the memory-mapped
token cache (built once, reused, rebuilt when damaged or stale) and batch parity with int64."""

import logging

import numpy as np
import pytest

from attnlab.data import text as text_mod
from attnlab.data.text import LMData, encode_text, load_text, read_text_file, token_cache_dir
from attnlab.errors import DataError, UnknownCharactersError
from attnlab.tokenizers import CharTokenizer, char
from attnlab.tokenizers.base import token_dtype
from attnlab.train.recipes import DataConfig, build_tokenizer_for, encode_corpus

# ASCII, two-byte (é, ö), three-byte (…) and four-byte (😀) UTF-8 characters.
MIXED = "The quick brown fox … jumps over the lazy dög.\né😀 tail\n" * 7


@pytest.fixture
def small_chunks(monkeypatch):
    """Slices of 7 characters, so every test text crosses many slice boundaries."""
    monkeypatch.setattr(char, "ENCODE_CHUNK_CHARS", 7)


@pytest.fixture
def token_cache(tmp_path, monkeypatch):
    """A private cache folder, a 100-character cache threshold and a count of encodings."""
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(text_mod, "TOKEN_CACHE_MIN_CHARS", 100)
    calls = []
    original = CharTokenizer.encode_chunks

    def counting(self, text):
        calls.append(len(text))
        return original(self, text)

    monkeypatch.setattr(CharTokenizer, "encode_chunks", counting)
    return calls


def test_token_dtype_is_the_smallest_unsigned_type_that_fits():
    assert token_dtype(2) == np.uint8 and token_dtype(256) == np.uint8
    assert token_dtype(257) == np.uint16 and token_dtype(65_536) == np.uint16
    assert token_dtype(65_537) == np.uint32 and token_dtype(2**32) == np.uint32


@pytest.mark.parametrize(("size", "dtype"), [(65_536, np.uint16), (65_537, np.uint32)])
def test_char_ids_take_the_vocabulary_dtype_at_the_uint16_boundary(size, dtype):
    chars = [chr(0x4E00 + i) for i in range(size)]  # CJK and beyond: distinct single characters
    tok = CharTokenizer(chars)
    text = chars[0] + chars[-1] + chars[size // 2]
    ids = tok.encode_array(text)
    assert ids.dtype == dtype
    assert ids.tolist() == tok.encode(text) == [0, size - 1, size // 2]


def test_slice_wise_encoding_equals_the_plain_encoding_across_boundaries(small_chunks):
    # Slices are [0, 7), [7, 14), [14, 21): "😀" ends the first, "é" starts the second,
    # "😀" starts the third; a slice of only ASCII and one of only non-ASCII too.
    boundary = "abcdef😀é" + "…" * 6 + "😀x"
    assert boundary[6] == boundary[14] == "😀" and boundary[7] == "é"
    for text in (MIXED, boundary, "a" * 20, "😀" * 15):
        tok = CharTokenizer.train(text)
        assert tok.chars == sorted(set(text))
        ids = tok.encode_array(text)
        assert ids.dtype == np.uint8 and ids.tolist() == tok.encode(text)
        parts = list(tok.encode_chunks(text))
        assert all(len(p) <= 7 for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), ids)
        assert tok.decode(ids) == text


def test_unknown_characters_still_raise_naming_all_of_them(small_chunks):
    tok = CharTokenizer.train("abc ")
    text = "abc abc abc z" + "abc " * 5 + "é"  # "z" in the second slice, "é" in the last
    with pytest.raises(UnknownCharactersError) as plain:
        tok.encode(text)
    with pytest.raises(UnknownCharactersError) as compact:
        tok.encode_array(text)
    assert compact.value.chars == plain.value.chars == ["z", "é"]
    with pytest.raises(UnknownCharactersError):
        list(tok.encode_chunks(text))
    with pytest.raises(DataError, match="'z', 'é'"):
        encode_corpus(tok, text, "t.txt")
    with_unk = CharTokenizer.train("abc ", specials=["[PAD]", "[UNK]"])
    assert with_unk.encode_array(text).tolist() == with_unk.encode(text)


def _batches(data: LMData) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = [data.train_batch(4, rng)[k] for _ in range(3) for k in ("input_ids", "targets")]
    out += [b[k] for b in data.eval_batches(4, 2, seed=1) for k in ("input_ids", "targets")]
    out += [b[k] for b in data.sweep("val", 4) for k in ("input_ids", "targets")]
    return out


def test_compact_and_memory_mapped_ids_give_the_int64_batches_of_today(token_cache):
    tok = CharTokenizer.train(MIXED)
    reference = _batches(LMData(np.asarray(tok.encode(MIXED), dtype=np.int64), seq_len=8))
    compact = tok.encode_array(MIXED)
    mapped = encode_text(tok, MIXED, "mixed.txt")
    assert isinstance(mapped, np.memmap) and compact.dtype == mapped.dtype == np.uint8
    for ids in (compact, mapped, list(compact)):
        batches = _batches(LMData(ids, seq_len=8))
        assert len(batches) == len(reference)
        for got, want in zip(batches, reference):
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, want)


def test_lm_data_splits_are_views_of_a_memory_map(token_cache):
    tok = CharTokenizer.train(MIXED)
    ids = encode_text(tok, MIXED, "mixed.txt")
    data = LMData(ids, seq_len=8)
    for part in data.splits.values():
        assert isinstance(part, np.memmap) and np.shares_memory(part, ids)
    assert len(data.splits["train"]) + len(data.splits["val"]) == len(MIXED)


def test_small_texts_stay_in_memory_and_write_no_cache(token_cache):
    tok = CharTokenizer.train(MIXED)
    ids = encode_text(tok, MIXED[:99], "short.txt")
    assert not isinstance(ids, np.memmap) and ids.dtype == np.uint8
    assert not token_cache_dir().exists()


def test_token_cache_is_built_once_then_memory_mapped(token_cache):
    tok = CharTokenizer.train(MIXED)
    first = encode_text(tok, MIXED, "mixed.txt")
    second = encode_text(tok, MIXED, "mixed.txt")
    assert len(token_cache) == 1  # the second call read the cache, it did not encode
    assert isinstance(second, np.memmap) and not second.flags.writeable
    np.testing.assert_array_equal(second, tok.encode(MIXED))
    np.testing.assert_array_equal(first, second)
    assert sorted(p.suffix for p in token_cache_dir().iterdir()) == [".json", ".npy"]
    other = CharTokenizer.train(MIXED, specials=["<pad>"])  # another tokenizer is another entry
    np.testing.assert_array_equal(encode_text(other, MIXED, "mixed.txt"), other.encode(MIXED))
    assert len(token_cache) == 2


def _damage(kind: str) -> None:
    npy = next(token_cache_dir().glob("*.npy"))
    raw = bytearray(npy.read_bytes())
    if kind == "truncated":
        npy.write_bytes(raw[:-5])
    elif kind == "truncated into the header":
        npy.write_bytes(raw[:20])
    elif kind == "one id changed":
        raw[-3] ^= 1
        npy.write_bytes(bytes(raw))
    elif kind == "sidecar missing":
        npy.with_suffix(".json").unlink()
    elif kind == "sidecar garbage":
        npy.with_suffix(".json").write_text("{not json")


@pytest.mark.parametrize(
    "kind", ["truncated", "truncated into the header", "one id changed", "sidecar missing", "sidecar garbage"]
)
def test_a_damaged_token_cache_is_detected_and_rebuilt(token_cache, caplog, kind):
    tok = CharTokenizer.train(MIXED)
    encode_text(tok, MIXED, "mixed.txt")
    _damage(kind)
    with caplog.at_level(logging.WARNING, logger="attnlab.data.text"):
        ids = encode_text(tok, MIXED, "mixed.txt")
    assert len(token_cache) == 2  # encoded again
    assert "rebuilding" in caplog.text
    assert isinstance(ids, np.memmap)
    np.testing.assert_array_equal(ids, tok.encode(MIXED))
    assert len(list(token_cache_dir().glob("*.npy"))) == 1
    encode_text(tok, MIXED, "mixed.txt")
    assert len(token_cache) == 2  # and the rebuilt entry is used


def test_token_cache_follows_the_source_file(token_cache, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(MIXED, encoding="utf-8")

    def ids_of_file():
        source = load_text(path)
        tok = build_tokenizer_for(DataConfig(source=str(path), tokenizer="char"), source.text)
        return tok, source.text, encode_corpus(tok, source.text, source.name)

    ids_of_file()
    ids_of_file()
    assert len(token_cache) == 1
    path.write_text(MIXED.replace("fox", "dog"), encoding="utf-8")  # same characters, other text
    tok, text, ids = ids_of_file()
    assert len(token_cache) == 2
    np.testing.assert_array_equal(ids, tok.encode(text))
    assert len(list(token_cache_dir().glob("*.npy"))) == 1  # the entry of the old text was removed


def test_unknown_characters_leave_no_cache_file(token_cache):
    tok = CharTokenizer.train("abc ")
    with pytest.raises(UnknownCharactersError):
        encode_text(tok, "abc " * 40 + "z", "bad.txt")
    assert not token_cache_dir().exists() or not list(token_cache_dir().iterdir())


def test_unwritable_cache_falls_back_to_memory(token_cache, monkeypatch, caplog):
    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(text_mod, "_write_token_cache", fail)
    tok = CharTokenizer.train(MIXED)
    with caplog.at_level(logging.WARNING, logger="attnlab.data.text"):
        ids = encode_text(tok, MIXED, "mixed.txt")
    assert not isinstance(ids, np.memmap) and "in memory" in caplog.text
    np.testing.assert_array_equal(ids, tok.encode(MIXED))


def test_read_text_file_bom_crlf_errors_and_blank_files(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes(b"\xef\xbb\xbf" + "é line\r\nsecond\r\n".encode())
    assert read_text_file(f) == "é line\nsecond\n"
    f.write_bytes(b"\xef\xbb\xbfok\nbad \xff here")
    with pytest.raises(DataError, match=r"invalid byte 0xff at byte 10 \(line 2\)"):
        read_text_file(f)
    f.write_bytes(b" \n\t\r\n")
    with pytest.raises(DataError, match="is empty"):
        read_text_file(f)
