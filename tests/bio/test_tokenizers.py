"""Protein / DNA / RNA tokenizers: ESM-2 id layout, round trips, errors, save/load, batching."""

from __future__ import annotations

import random

import pytest
import torch

from attnlab.bio.tokenizers import (
    ESM2_VOCAB,
    PROTEIN_LETTERS,
    DNATokenizer,
    InvalidLettersError,
    ProteinTokenizer,
    RNATokenizer,
)
from attnlab.errors import TokenizerError, UnknownCharactersError
from attnlab.tokenizers import build_tokenizer, load_tokenizer, registered_kinds


def test_bio_kinds_are_registered():
    assert {"protein", "dna", "rna"} <= set(registered_kinds())


def test_protein_ids_follow_esm2_layout():
    tok = ProteinTokenizer()
    # By hand, from ESM-2's published 33-token alphabet.
    assert tok.vocab_size == 33
    assert (tok.cls_id, tok.pad_id, tok.eos_id, tok.unk_id, tok.mask_id) == (0, 1, 2, 3, 32)
    assert tok.encode("LAGC") == [4, 5, 6, 23]
    assert tok.encode("XBUZO") == [24, 25, 26, 27, 28]
    assert tok.bos_id == tok.cls_id and tok.sep_id == tok.eos_id


def test_protein_matches_hugging_face_esm_tokenizer(tmp_path):
    transformers = pytest.importorskip("transformers")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(ESM2_VOCAB) + "\n")
    hf = transformers.EsmTokenizer(str(vocab))
    tok = ProteinTokenizer()
    for seq in ["MKTAYIAKQRQISFVKSHFSRQ", "XBUZO", "A"]:
        assert tok.encode_with_specials(seq) == hf(seq)["input_ids"]
    assert (hf.cls_token_id, hf.pad_token_id, hf.eos_token_id, hf.unk_token_id, hf.mask_token_id) == (
        tok.cls_id,
        tok.pad_id,
        tok.eos_id,
        tok.unk_id,
        tok.mask_id,
    )


def test_protein_round_trip_and_lowercase():
    tok = ProteinTokenizer()
    rng = random.Random(0)
    for _ in range(20):
        seq = "".join(rng.choice(PROTEIN_LETTERS) for _ in range(rng.randint(1, 50)))
        assert tok.decode(tok.encode(seq)) == seq
    assert tok.encode("mktw") == tok.encode("MKTW")
    assert tok.decode(tok.encode_with_specials("mk")) == "<cls>MK<eos>"


@pytest.mark.parametrize("bad, named", [("MKJ", ["'J'"]), ("MK1T*", ["'1'", "'*'"]), ("MK T", ["' '"])])
def test_protein_invalid_letters_are_named(bad, named):
    with pytest.raises(UnknownCharactersError) as info:
        ProteinTokenizer().encode(bad)
    for name in named:
        assert name in str(info.value)
    assert isinstance(info.value, InvalidLettersError)


def test_protein_uppercase_false_rejects_lowercase_and_gaps_are_opt_in():
    with pytest.raises(UnknownCharactersError, match="'m'"):
        ProteinTokenizer(uppercase=False).encode("mK")
    with pytest.raises(UnknownCharactersError, match="'-'"):
        ProteinTokenizer().encode("MK-T")
    assert ProteinTokenizer(allow_gaps=True).encode("K-.") == [15, 30, 29]


def test_build_tokenizer_validates_the_corpus():
    tok = build_tokenizer("protein", "MKT\nacde\n")
    assert isinstance(tok, ProteinTokenizer)
    with pytest.raises(UnknownCharactersError, match="'J'"):
        build_tokenizer("protein", "MKT\nMJK\n")
    with pytest.raises(TokenizerError):
        build_tokenizer("protein", "   ")
    dna = build_tokenizer("dna", "ACGT\nNNA", k=3, overlapping=True)
    assert (dna.k, dna.overlapping) == (3, True)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_dna_vocab_size_and_non_overlapping_round_trip(k):
    tok = DNATokenizer(k=k)
    assert tok.vocab_size == 5 + sum(5**j for j in range(1, k + 1))
    rng = random.Random(k)
    for length in [1, k - 1, k, k + 1, 3 * k + 2, 25]:
        if length < 1:
            continue
        seq = "".join(rng.choice("ACGTN") for _ in range(length))
        ids = tok.encode(seq)
        assert len(ids) == -(-length // k)  # ceil(length / k)
        assert tok.decode(ids) == seq


def test_dna_kmers_by_hand():
    tok = DNATokenizer(k=3)
    assert tok.split_kmers("ACGTA") == ["ACG", "TA"]
    over = DNATokenizer(k=3, overlapping=True)
    assert over.split_kmers("ACGTA") == ["ACG", "CGT", "GTA"]
    assert over.decode(over.encode("ACGTA")) == "ACGTA"
    assert over.split_kmers("AC") == ["AC"] and over.decode(over.encode("AC")) == "AC"
    # k = 1 ids: specials 0-4, then A C G T N.
    assert DNATokenizer().encode("ACGTN") == [5, 6, 7, 8, 9]
    # Specials between runs of overlapping k-mers are written out.
    ids = over.encode_with_specials("ACGTA")
    assert over.decode(ids) == "<cls>ACGTA<eos>"


def test_dna_errors_and_rna():
    with pytest.raises(UnknownCharactersError, match="rna=True"):
        DNATokenizer().encode("ACGU")
    assert RNATokenizer(k=2).decode(RNATokenizer(k=2).encode("acgun")) == "ACGUN"
    with pytest.raises(UnknownCharactersError, match="'T'"):
        RNATokenizer().encode("ACGT")
    with pytest.raises(TokenizerError, match="k-mer"):
        DNATokenizer(k=7)
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        DNATokenizer().decode([999])


@pytest.mark.parametrize(
    "tok",
    [
        ProteinTokenizer(),
        ProteinTokenizer(uppercase=False, allow_gaps=True),
        DNATokenizer(k=3, overlapping=True),
        RNATokenizer(k=2),
    ],
)
def test_save_and_load(tok, tmp_path):
    tok.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert type(loaded) is type(tok)
    assert loaded.to_dict() == tok.to_dict()
    seq = (
        "ACGA" if isinstance(tok, DNATokenizer) and not tok.rna else "ACGU" if isinstance(tok, DNATokenizer) else "MKTA"
    )
    assert loaded.encode(seq) == tok.encode(seq)


def test_encode_batch_pads_and_masks():
    tok = ProteinTokenizer()
    batch = tok.encode_batch(["MK", "MKTW"])
    expected = torch.tensor([[0, 20, 15, 2, 1, 1], [0, 20, 15, 11, 22, 2]])
    torch.testing.assert_close(batch.input_ids, expected)
    torch.testing.assert_close(batch.attention_mask, expected != tok.pad_id)
    torch.testing.assert_close(batch.residue_mask, (expected > 3) & (expected != 32))
    torch.testing.assert_close(batch.lengths, torch.tensor([2, 4]))
    cut = tok.encode_batch(["MKTWAAA", "MK"], max_length=5)
    assert cut.input_ids.shape == (2, 5)
    assert tok.decode(cut.input_ids[0].tolist()) == "<cls>MKT<eos>"
    plain = tok.encode_batch(["MK", "M"], add_special_tokens=False)
    torch.testing.assert_close(plain.input_ids, torch.tensor([[20, 15], [20, 1]]))
