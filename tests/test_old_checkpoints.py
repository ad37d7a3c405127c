"""Checkpoints written before the models shared one shape still load, with the same outputs.

`tests/fixtures/checkpoints_2026_12_06/` holds checkpoints written by attnlab as of
2026-12-06 (commit 9c04e40, before the config base, the block-stack builder and the
registry capabilities): a nano GPT (rotary, tied), a nano GPT with learned positions,
biases and an untied head, a mini encoder and a seq2seq model, together with the outputs
that code computed for fixed inputs (`expected_outputs.npz`). Today's code must give the
same outputs: the checkpoint format and the parameter names are a promise. (Equal to
float32 rounding, not bit for bit: the thread count and the CPU's kernels change the order
of a matrix product's sums.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.models.registry import load_model

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints_2026_12_06"
EXPECTED = np.load(FIXTURES / "expected_outputs.npz")


@pytest.mark.parametrize("name", ["gpt", "gpt_learned", "encoder"])
def test_an_old_checkpoint_gives_the_same_logits(name):
    model, _ = load_model(FIXTURES / name)
    with torch.no_grad():
        logits = model(torch.from_numpy(EXPECTED[f"{name}_input"])).logits.numpy()
    np.testing.assert_allclose(logits, EXPECTED[f"{name}_logits"], rtol=1e-5, atol=1e-6)


def test_an_old_seq2seq_checkpoint_gives_the_same_logits():
    model, _ = load_model(FIXTURES / "seq2seq")
    source = torch.from_numpy(EXPECTED["seq2seq_source"])
    target = torch.from_numpy(EXPECTED["seq2seq_target"])
    with torch.no_grad():
        logits = model(source, decoder_input_ids=target).logits.numpy()
    np.testing.assert_allclose(logits, EXPECTED["seq2seq_logits"], rtol=1e-5, atol=1e-6)


def test_an_old_gpt_checkpoint_keeps_its_tokenizer_and_generates():
    from attnlab.generate import generate_text

    model, tokenizer = load_model(FIXTURES / "gpt")
    assert tokenizer is not None and tokenizer.vocab_size == model.config.vocab_size
    text = generate_text(model, tokenizer, "hello", max_new_tokens=5, temperature=0.0)
    assert text.startswith("hello") and len(text) >= len("hello")
