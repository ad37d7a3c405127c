"""`attnlab.analysis.lens`: the logit lens and sub-layer effects against forward hooks.

The references are computed from PyTorch forward hooks on the model's own modules
(block outputs, attention and feed-forward outputs, norms), independently of the
`trace=` mechanism the library reads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.analysis.lens import logit_lens, stream_norms, sublayer_effects
from attnlab.errors import ConfigError, DataError
from attnlab.models.gpt import GPT, GPTConfig


def _model(norm_first: bool = True, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig.from_name("nano", vocab_size=11, max_seq_len=8, num_layers=3, norm_first=norm_first))
    with torch.no_grad():  # larger weights than the N(0, 0.02) start, so the numbers are not all tiny
        for p in model.parameters():
            p.mul_(8.0) if p.dim() > 1 else p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _hooked(model: GPT, ids: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Inputs and outputs of every block, attention, feed-forward and norm, via forward hooks."""
    seen: dict[str, list[torch.Tensor]] = {k: [] for k in ("block_in", "block_out", "attn", "ff", "norm1", "norm2")}
    handles = []

    def keep(name, take_input=False):
        def hook(module, inputs, output):
            value = inputs[0] if take_input else output
            seen[name].append((value[0] if isinstance(value, tuple) else value).detach())

        return hook

    for block in model.blocks:
        handles += [
            block.register_forward_hook(lambda m, i, o: seen["block_in"].append(i[0].detach())),
            block.register_forward_hook(lambda m, i, o: seen["block_out"].append(o.hidden.detach())),
            block.attn.register_forward_hook(keep("attn")),
            block.ff.register_forward_hook(keep("ff")),
            block.norm1.register_forward_hook(keep("norm1")),
            block.norm2.register_forward_hook(keep("norm2")),
        ]
    with torch.no_grad():
        model(ids)
    for h in handles:
        h.remove()
    return seen


IDS = torch.tensor([[1, 5, 2, 9, 3, 3, 7]])


@pytest.mark.parametrize("norm_first", [True, False])
def test_logit_lens_rows_are_the_head_on_each_blocks_output(norm_first):
    model = _model(norm_first)
    lens = logit_lens(model, IDS, k=4)
    seen = _hooked(model, IDS)
    streams = [seen["block_in"][0]] + seen["block_out"]  # embeddings, then after each block
    assert lens.layer_names == ["embeddings", "block 0", "block 1", "block 2"]
    with torch.no_grad():
        for r, s in enumerate(streams):
            probs = torch.softmax(model.lm_head(model.norm(s))[0].double(), -1)
            values, top = torch.topk(probs, 4)
            np.testing.assert_array_equal(lens.top_ids[r], top.numpy())
            np.testing.assert_allclose(lens.top_probs[r], values.numpy(), rtol=1e-5, atol=1e-7)
            entropy = -(probs * probs.log()).sum(-1)
            np.testing.assert_allclose(lens.entropy[r], entropy.numpy(), rtol=1e-4)
        final = torch.softmax(model(IDS).logits[0].double(), -1)  # the last row is the model's prediction
    np.testing.assert_allclose(lens.top_probs[-1, :, 0], final.max(-1).values.numpy(), rtol=1e-5)
    np.testing.assert_allclose(lens.final_prob[-1], lens.top_probs[-1, :, 0], rtol=1e-6)
    assert np.all(lens.final_prob <= 1.0) and np.all(lens.final_prob > 0)


def test_sublayer_effects_pre_norm_against_hooks():
    model = _model(True)
    fx = sublayer_effects(model, IDS[0])
    seen = _hooked(model, IDS)

    def mean_norm(t):
        return t[0].double().norm(dim=-1).mean().item()

    for i in range(3):
        x, a, f, y = seen["block_in"][i], seen["attn"][i], seen["ff"][i], seen["block_out"][i]
        h = x + a
        assert fx.norms["stream_in"][i] == pytest.approx(mean_norm(x), rel=1e-6)
        assert fx.norms["attn_out"][i] == pytest.approx(mean_norm(a), rel=1e-6)
        assert fx.norms["residual_attn"][i] == pytest.approx(mean_norm(h), rel=1e-6)
        assert fx.norms["norm1"][i] == pytest.approx(mean_norm(seen["norm1"][i]), rel=1e-6)
        assert fx.norms["norm2"][i] == pytest.approx(mean_norm(seen["norm2"][i]), rel=1e-6)
        assert fx.norms["ff_out"][i] == pytest.approx(mean_norm(f), rel=1e-6)
        assert fx.norms["stream_out"][i] == pytest.approx(mean_norm(y), rel=1e-6)
        assert fx.norms["residual_ff"][i] == pytest.approx(mean_norm(y), rel=1e-6)  # pre-norm: out = h + f
        ratio = (a[0].double().norm(dim=-1) / x[0].double().norm(dim=-1)).mean().item()
        assert fx.attn_update[i] == pytest.approx(ratio, rel=1e-6)
        cos = torch.nn.functional.cosine_similarity(h[0].double(), y[0].double(), dim=-1).mean().item()
        assert fx.ff_cosine[i] == pytest.approx(cos, rel=1e-6)
    assert fx.norm_first and fx.num_layers == 3 and len(fx.rows()) == 3


def test_sublayer_effects_post_norm_norms_read_the_residual_sums():
    model = _model(False)
    fx = sublayer_effects(model, IDS)
    seen = _hooked(model, IDS)
    for i in range(3):
        x, a, f = seen["block_in"][i], seen["attn"][i], seen["ff"][i]
        h = seen["norm1"][i]  # post-norm: the stream after attention is norm1(x + a)
        torch.testing.assert_close(h, model.blocks[i].norm1(x + a))
        assert fx.norms["residual_attn"][i] == pytest.approx((x + a)[0].double().norm(dim=-1).mean().item(), rel=1e-6)
        assert fx.norms["norm1"][i] == pytest.approx(h[0].double().norm(dim=-1).mean().item(), rel=1e-6)
        assert fx.norms["residual_ff"][i] == pytest.approx((h + f)[0].double().norm(dim=-1).mean().item(), rel=1e-6)
    # a post-norm stream leaves every block with LayerNorm's size, about sqrt(C) (weights are perturbed a little)
    assert not fx.norm_first
    np.testing.assert_allclose(fx.norms["stream_out"], np.sqrt(32), rtol=0.2)


def test_stream_norms_and_input_checks():
    model = _model(True)
    seen = _hooked(model, IDS)
    expected = np.stack([s[0].double().norm(dim=-1).numpy() for s in [seen["block_in"][0]] + seen["block_out"]])
    np.testing.assert_allclose(stream_norms(model, IDS), expected, rtol=1e-6)
    with pytest.raises(DataError, match="context"):
        logit_lens(model, torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(DataError, match="one sequence"):
        sublayer_effects(model, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="k must be"):
        logit_lens(model, IDS, k=0)
    with pytest.raises(ConfigError, match="need a GPT"):
        logit_lens(torch.nn.Linear(2, 2), IDS)


def test_the_lens_reads_any_registered_causal_lm():
    llama = pytest.importorskip("attnlab.models.llama")
    torch.manual_seed(0)
    model = llama.Llama(llama.Llama.config_class.from_name("nano")).eval()
    lens = logit_lens(model, IDS, k=3)
    with torch.no_grad():
        final = torch.softmax(model(IDS).logits[0].float(), -1)
    torch.testing.assert_close(torch.from_numpy(lens.top_probs[-1]), torch.topk(final, 3, dim=-1).values)
    assert lens.num_rows == model.config.num_layers + 1
    fx = sublayer_effects(model, IDS)
    assert fx.num_layers == model.config.num_layers and np.isfinite(fx.attn_update).all()


def test_the_lens_refuses_a_masked_lm_by_name():
    from attnlab.models.encoder import Encoder, EncoderConfig

    encoder = Encoder(EncoderConfig.from_name("mini")).eval()
    with pytest.raises(ConfigError, match=r"need a GPT \(a causal language model: gpt, llama\), got a encoder model"):
        logit_lens(encoder, IDS)
