"""Activation patching (`attnlab.interp.patching`).

What is promised: the metric is 0 for the corrupted run and 1 for the clean one; patching
the final residual stream at the read position restores the clean answer exactly, and at
any other position does nothing; patching where clean and corrupted agree does nothing;
a cell's value is the one a direct run with that hook gives; bad inputs are ConfigErrors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.interp import run_with_cache, run_with_hooks
from attnlab.interp.patching import (
    logit_diff,
    normalised_metric,
    patch_attn_out,
    patch_heads,
    patch_mlp_out,
    patch_residual,
)
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.llama import Llama, LlamaConfig
from tests.interp.scramble import scramble

V = 24
ANSWER, WRONG = 3, 7


@pytest.fixture(scope="module", params=["gpt", "llama"])
def model(request) -> nn.Module:
    if request.param == "gpt":
        return scramble(GPT(GPTConfig.from_name("nano", vocab_size=V, bias=True)))
    return scramble(Llama(LlamaConfig.from_name("nano", vocab_size=V)))


@pytest.fixture(scope="module")
def pair():
    clean = torch.tensor([[1, 5, 9, 2, 11, 4, 8]])
    corrupted = clean.clone()
    corrupted[0, 2] = 13  # one token differs
    return clean, corrupted


def test_logit_diff_and_metric_by_hand():
    logits = torch.zeros(2, 3, 5)
    logits[0, -1, 1], logits[0, -1, 2] = 4.0, 1.0
    logits[1, -1, 1], logits[1, -1, 2] = 0.5, 2.0
    torch.testing.assert_close(logit_diff(logits, 1, 2), torch.tensor([3.0, -1.5]))
    torch.testing.assert_close(logit_diff(logits, [1, 2], [2, 1]), torch.tensor([3.0, 1.5]))
    assert normalised_metric(2.0, 3.0, 1.0) == pytest.approx(0.5)
    assert normalised_metric(1.0, 3.0, 1.0) == 0.0 and normalised_metric(3.0, 3.0, 1.0) == 1.0
    with pytest.raises(ConfigError, match="same logit difference"):
        normalised_metric(1.0, 2.0, 2.0)


def test_residual_patching_restores_at_the_final_row(model, pair):
    clean, corrupted = pair
    L = len(model.blocks)
    r = patch_residual(model, clean, corrupted, ANSWER, WRONG)
    T = clean.size(1)
    assert r.values.shape == (L + 1, T)
    assert r.row_labels[-1] == "final"
    assert r.values[-1, -1] == pytest.approx(1.0, abs=1e-5)  # the stream the unembedding reads
    np.testing.assert_allclose(r.values[-1, :-1], 0.0, atol=1e-6)  # other positions: nothing to restore
    # where clean and corrupted agree (and before the changed token) the stream is the same: 0
    np.testing.assert_allclose(r.values[:, :2], 0.0, atol=1e-6)
    np.testing.assert_allclose(r.values[0, 3:], 0.0, atol=1e-6)
    assert r.values[0, 2] == pytest.approx(1.0, abs=1e-5)  # the embedding of the changed token: all of it
    assert r.clean_logit_diff != r.corrupted_logit_diff
    rows = r.to_rows()
    assert len(rows) == (L + 1) * T and rows[0]["hook"] == "blocks.0.hook_resid_pre"


def test_a_cell_equals_a_direct_patched_run(model, pair):
    clean, corrupted = pair
    name = "blocks.1.attn.hook_z"
    _, cache = run_with_cache(model, clean, names=name)

    def patch(z, _):
        z = z.clone()
        z[:, :, 1] = cache[name][:, :, 1]
        return z

    with torch.no_grad():
        ld = float(logit_diff(run_with_hooks(model, corrupted, fwd_hooks=[(name, patch)]), ANSWER, WRONG))
        lc = float(logit_diff(model(clean).logits, ANSWER, WRONG))
        lx = float(logit_diff(model(corrupted).logits, ANSWER, WRONG))
    h = patch_heads(model, clean, corrupted, ANSWER, WRONG)
    assert h.values.shape == (len(model.blocks), model.blocks[0].attn.num_heads)
    assert h.values[1, 1] == pytest.approx((ld - lx) / (lc - lx), abs=1e-5)


def test_attention_and_mlp_outputs_of_the_last_layer(model, pair):
    clean, corrupted = pair
    a = patch_attn_out(model, clean, corrupted, ANSWER, WRONG)
    m = patch_mlp_out(model, clean, corrupted, ANSWER, WRONG)
    assert a.values.shape == m.values.shape == (len(model.blocks), 1)
    # patching every head of a layer is patching its attention output
    h = patch_heads(model, clean, corrupted, ANSWER, WRONG)
    assert np.all(np.isfinite(h.values))
    ap = patch_attn_out(model, clean, corrupted, ANSWER, WRONG, per_position=True)
    assert ap.values.shape == (len(model.blocks), clean.size(1))
    np.testing.assert_allclose(ap.values[:, :2], 0.0, atol=1e-6)  # before the change nothing differs


def test_attention_only_model_has_no_mlp_to_patch(pair):
    model = scramble(GPT(GPTConfig.from_name("nano", vocab_size=V, attn_only=True)))
    with pytest.raises(ConfigError, match="attention-only"):
        patch_mlp_out(model, *pair, ANSWER, WRONG)
    assert patch_attn_out(model, *pair, ANSWER, WRONG).values.shape == (2, 1)


def test_bad_inputs(model, pair):
    clean, corrupted = pair
    with pytest.raises(ConfigError, match="same token length"):
        patch_residual(model, clean, corrupted[:, :-1], ANSWER, WRONG)
    with pytest.raises(ConfigError, match="same logit difference"):
        patch_residual(model, clean, clean, ANSWER, WRONG)
