"""Tokenizers: round trips, specials, unknown characters, save/load through a folder."""

import json

import pytest

from attnlab.errors import TokenizerError, UnknownCharactersError
from attnlab.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, build_tokenizer, load_tokenizer

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n  the slings!"


def test_char_round_trip_and_vocabulary():
    tok = CharTokenizer.train(TEXT)
    assert tok.vocab_size == len(set(TEXT))
    assert tok.decode(tok.encode(TEXT)) == TEXT
    assert tok.encode("ab") == [tok.stoi["a"], tok.stoi["b"]]
    assert tok.chars == sorted(set(TEXT))


def test_char_unknown_characters_are_named():
    tok = CharTokenizer.train("abc")
    with pytest.raises(UnknownCharactersError) as err:
        tok.encode("abzzé")
    assert err.value.chars == ["z", "é"]
    assert "'z'" in str(err.value) and "'é'" in str(err.value)


def test_char_with_unknown_token_maps_unseen_characters():
    tok = CharTokenizer.train("abc", specials=["[PAD]", "[UNK]"])
    assert tok.encode("az") == [tok.stoi["a"], tok.unk_id]
    assert tok.pad_id == 0 and tok.unk_id == 1


def test_word_tokenizer_specials_and_round_trip():
    tok = WordTokenizer.train(TEXT)
    assert tok.special_tokens == {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3}
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.decode(tok.encode(TEXT)) == TEXT
    ids = tok.encode("To be or zebra")
    assert tok.unk_id in ids  # " zebra" was never seen
    assert tok.decode(ids) == "To be or<unk>"


def test_word_vocab_limit_keeps_most_frequent():
    # pieces: "a" x1, " a" x2, " b" x2, " c" x1 -> the two most frequent, ties alphabetical
    tok = WordTokenizer.train("a a a b b c", max_vocab=6)
    assert tok.itos[4:] == [" a", " b"]
    assert tok.vocab_size == 6
    with pytest.raises(TokenizerError):
        WordTokenizer.train("x", max_vocab=3)


def test_bpe_round_trips_any_unicode():
    tok = BPETokenizer.train(TEXT * 20, vocab_size=300)
    weird = "naïve café — 東京 🙂\n\ttabs"
    assert tok.decode(tok.encode(weird)) == weird
    assert tok.decode(tok.encode(TEXT)) == TEXT
    assert len(tok.encode(TEXT)) < len(TEXT)  # merges compress
    assert tok.vocab_size <= 300


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_save_and_load(tmp_path, kind):
    options = {"bpe": {"vocab_size": 280}}.get(kind, {})
    tok = build_tokenizer(kind, TEXT * 5, **options)
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert type(again) is type(tok)
    assert again.encode(TEXT) == tok.encode(TEXT)
    assert again.vocab_size == tok.vocab_size


def test_load_errors(tmp_path):
    with pytest.raises(TokenizerError, match="missing"):
        load_tokenizer(tmp_path)
    (tmp_path / "attnlab_tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="not valid JSON"):
        load_tokenizer(tmp_path)
    (tmp_path / "attnlab_tokenizer.json").write_text(json.dumps({"type": "klingon"}))
    with pytest.raises(TokenizerError, match="unknown tokenizer type"):
        load_tokenizer(tmp_path)
    (tmp_path / "attnlab_tokenizer.json").write_text(json.dumps({"type": "char"}))
    with pytest.raises(TokenizerError, match="corrupt"):
        load_tokenizer(tmp_path)


def test_decode_rejects_out_of_range_ids():
    tok = CharTokenizer.train("abc")
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        tok.decode([0, 99])


def test_token_strings_for_labels():
    tok = BPETokenizer.train(TEXT * 20, vocab_size=300)
    ids = tok.encode("the question")
    assert "".join(tok.token_strings(ids)) == "the question"
