"""Direct logit attribution and the loss change per ablated head (`attnlab.interp.attribution`).

What is promised: the contributions sum to the logit (GPT with LayerNorm and biases, LLaMA
with RMSNorm, attention-only models), one head's contribution is its own write through the
frozen norm, a logit difference splits too; the loss change of ablating a head equals a
run with that head removed by hand; models where the stream is not a sum are refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.interp import run_with_cache, run_with_hooks
from attnlab.interp.attribution import direct_logit_attribution, lm_loss, loss_change_per_head
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.llama import Llama, LlamaConfig
from tests.interp.scramble import scramble

V = 24
IDS = torch.tensor([[1, 5, 9, 2, 11, 4, 8, 3]])


MODELS = {
    "gpt": lambda: GPT(GPTConfig.from_name("nano", vocab_size=V, bias=True)),
    "gpt-no-bias": lambda: GPT(GPTConfig.from_name("nano", vocab_size=V, bias=False)),
    "gpt-attn-only": lambda: GPT(GPTConfig.from_name("nano", vocab_size=V, attn_only=True)),
    "gpt-rotary": lambda: GPT(GPTConfig.from_name("nano", vocab_size=V, positional="rotary")),
    "llama": lambda: Llama(LlamaConfig.from_name("nano", vocab_size=V)),
}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request) -> nn.Module:
    return scramble(MODELS[request.param]())


def test_contributions_sum_to_the_logit(model):
    with torch.no_grad():
        logits = model(IDS).logits
    for position, token in [(-1, None), (3, 5)]:
        a = direct_logit_attribution(model, IDS, token, position=position)
        expected = float(logits[0, position, a.token])
        assert a.logit == pytest.approx(expected, abs=1e-5)
        assert a.total == pytest.approx(expected, abs=1e-4)
    assert direct_logit_attribution(model, IDS).token == int(logits[0, -1].argmax())  # default: the prediction
    L, H = len(model.blocks), model.blocks[0].attn.num_heads
    assert a.head_matrix().shape == (L, H)
    assert sum(k == "head" for k in a.kinds) == L * H
    rows = a.to_rows()
    assert len(rows) == len(a.labels) and sum(r["contribution"] for r in rows) == pytest.approx(a.total)


def test_logit_difference_splits_too(model):
    with torch.no_grad():
        logits = model(IDS).logits[0, -1]
    a = direct_logit_attribution(model, IDS, 4, wrong=6)
    assert a.total == pytest.approx(float(logits[4] - logits[6]), abs=1e-4)


def test_one_head_is_its_write_through_the_frozen_norm():
    model = scramble(GPT(GPTConfig.from_name("nano", vocab_size=V, bias=True)))
    _, cache = run_with_cache(model, IDS)
    layer, head, token = 1, 0, 5
    z = cache[f"blocks.{layer}.attn.hook_z"][0, -1, head]  # (D,)
    D = z.numel()
    W_O = model.blocks[layer].attn.out.weight[:, head * D : (head + 1) * D]
    write = (W_O @ z).double()
    final = cache["blocks.1.hook_resid_post"][0, -1].double()
    norm = model.norm
    scale = torch.sqrt(final.var(unbiased=False) + norm.eps)
    expected = ((write - write.mean()) / scale * norm.weight.double()) @ model.lm_head.weight[token].double()
    a = direct_logit_attribution(model, IDS, token)
    assert a.values[a.labels.index("L1H0")] == pytest.approx(float(expected.detach()), abs=1e-6)
    assert {"L0 attn bias", "L0 MLP bias", "final norm bias", "pos_embed"} <= set(a.labels)


def test_post_norm_models_and_batches_are_refused():
    post = scramble(GPT(GPTConfig.from_name("nano", vocab_size=V, norm_first=False)))
    with pytest.raises(ConfigError, match="pre-norm"):
        direct_logit_attribution(post, IDS)
    pre = scramble(GPT(GPTConfig.from_name("nano", vocab_size=V)))
    with pytest.raises(ConfigError, match="one sequence"):
        direct_logit_attribution(pre, IDS.repeat(2, 1))
    with pytest.raises(ConfigError, match="vocabulary"):
        direct_logit_attribution(pre, IDS, V + 3)


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_loss_change_equals_a_direct_computation(model, kind):
    change = loss_change_per_head(model, IDS, kind)
    L, H = len(model.blocks), model.blocks[0].attn.num_heads
    assert change.values.shape == (L, H)
    with torch.no_grad():
        base = float(lm_loss(model(IDS).logits, IDS))
        _, cache = run_with_cache(model, IDS, names="blocks.*.attn.hook_z")
    assert change.base_loss == pytest.approx(base, abs=1e-6)
    layer, head = L - 1, 1

    def remove(z, name):
        z = z.clone()
        z[:, :, head] = 0.0 if kind == "zero" else cache[name][:, :, head].mean(dim=(0, 1))
        return z

    with torch.no_grad():
        logits = run_with_hooks(model, IDS, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", remove)])
    assert change.values[layer, head] == pytest.approx(float(lm_loss(logits, IDS)) - base, abs=1e-5)
    assert len(change.to_rows()) == L * H


def test_loss_change_inputs():
    model = scramble(GPT(GPTConfig.from_name("nano", vocab_size=V)))
    with pytest.raises(ConfigError, match="resample"):
        loss_change_per_head(model, IDS, "resample")
    batch = torch.randint(0, V, (3, 8), generator=torch.Generator().manual_seed(0))
    assert np.isfinite(loss_change_per_head(model, batch, "resample").values).all()
    some = loss_change_per_head(model, IDS, "zero", heads=[(0, 1)])
    assert np.isfinite(some.values[0, 1]) and np.isnan(some.values[1, 0])
    with pytest.raises(ConfigError, match="unknown ablation"):
        loss_change_per_head(model, IDS, "shuffle")
