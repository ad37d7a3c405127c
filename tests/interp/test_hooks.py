"""Hook points and the activation cache (`attnlab.nn.hooks`, `attnlab.interp.hooks`, `attnlab.interp.ablation`).

What is promised: a hooked forward computes what a plain forward computes (every model
family); the cache holds what the blocks' `trace=` and `output_attentions` already expose;
a replaced activation changes only what is downstream of it; hooks never outlive their
block (even when the forward raises); bad hooks and bad names fail with clear messages;
hooks work during KV-cache generation; `hook_names` is the order in which a forward runs
the hook points; the ablations do what their names say.

The models get random weights larger than their initialisation (`_scramble`), so that
heads, norms and feed-forward layers all matter to the logits.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from attnlab.decoding.causal import generate
from attnlab.errors import ConfigError
from attnlab.interp import (
    head_ablation_hooks,
    hook_names,
    hooks,
    mlp_ablation_hooks,
    resolve_names,
    run_with_cache,
    run_with_hooks,
)
from attnlab.interp.hooks import enable_hooks
from attnlab.models.encoder import Encoder, EncoderConfig
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.llama import Llama, LlamaConfig
from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnlab.models.vit import ViT, ViTConfig
from attnlab.nn.hooks import HookedMixin, HookPoint, hook_points
from tests.interp.scramble import scramble

V = 40  # vocabulary of the language models
TOL = dict(rtol=1e-5, atol=1e-5)  # the hooked path attends step by step, the plain one with a fused kernel


def _ids(batch: int = 2, length: int = 12, seed: int = 1, low: int = 0) -> Tensor:
    return torch.randint(low, V, (batch, length), generator=torch.Generator().manual_seed(seed))


# name -> (model builder, (args, kwargs) of one forward)
def _gpt(**overrides):
    return scramble(GPT(GPTConfig.from_name("nano", vocab_size=V, **overrides)))


def _llama():
    return scramble(Llama(LlamaConfig.from_name("nano", vocab_size=V, num_heads=4, num_kv_heads=2)))


def _encoder(**overrides):
    return scramble(Encoder(EncoderConfig.from_name("mini", vocab_size=V, **overrides)))


def _seq2seq():
    return scramble(Seq2Seq(Seq2SeqConfig.from_name("tiny", vocab_size=V, num_decoder_layers=2)))


def _vit():
    return scramble(ViT(ViTConfig.from_name("tiny")))


def _lm_input():
    return (_ids(),), {}


def _encoder_input():
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0  # padding on the second row
    return (_ids(low=1),), {"attention_mask": mask}


def _seq2seq_input():
    source = _ids(length=10, low=3)
    source[1, 7:] = 0  # pad_id: padding the cross-attention must not look at
    return (source,), {"decoder_input_ids": _ids(length=8, seed=2, low=3)}


def _vit_input():
    return (torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3)),), {}


MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[], tuple]]] = {
    "gpt_learned": (lambda: _gpt(positional="learned"), _lm_input),
    "gpt_rotary": (lambda: _gpt(positional="rotary"), _lm_input),
    "gpt_post_norm": (lambda: _gpt(positional="learned", norm_first=False), _lm_input),
    "gpt_attn_only": (lambda: _gpt(positional="learned", attn_only=True), _lm_input),
    "llama_gqa": (_llama, _lm_input),
    "encoder": (_encoder, _encoder_input),
    "encoder_pre_norm_rotary": (
        lambda: _encoder(norm_first=True, positional="rotary", final_norm=True, embed_norm=False),
        _encoder_input,
    ),
    "seq2seq": (_seq2seq, _seq2seq_input),
    "vit": (_vit, _vit_input),
}
# models whose blocks take `trace=` (the stacks run by `run_blocks`)
TRACED = ["gpt_learned", "gpt_rotary", "gpt_post_norm", "gpt_attn_only", "llama_gqa", "encoder"]


def _build(name: str) -> tuple[nn.Module, tuple, dict]:
    build, inputs = MODELS[name]
    args, kwargs = inputs()
    return build(), args, kwargs


def _assert_unhooked(model: nn.Module) -> None:
    """No hook attached to any hook point, and every module's `hooked` flag off."""
    for name, point in hook_points(model):
        assert not point._forward_hooks, f"a hook is still attached to {name}"
    for module in model.modules():
        if isinstance(module, HookedMixin):
            assert module.hooked is False
            assert "hooked" not in module.__dict__


# ---------------------------------------------------------------------------
# A hooked forward computes the same function
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_hooks_leave_the_output_unchanged(name):
    model, args, kwargs = _build(name)
    with torch.no_grad():
        plain = model(*args, **kwargs).logits
        cached, cache = run_with_cache(model, *args, **kwargs)
        identity = run_with_hooks(model, *args, fwd_hooks=[(None, lambda t, n: t)], **kwargs)
        again = model(*args, **kwargs).logits
    torch.testing.assert_close(cached, plain, **TOL)
    torch.testing.assert_close(identity, plain, **TOL)
    torch.testing.assert_close(again, plain, rtol=0, atol=0)  # the plain path is back, bit for bit
    assert set(cache) == set(hook_names(model))  # every hook point ran
    _assert_unhooked(model)


@pytest.mark.parametrize("name", ["gpt_learned", "llama_gqa", "seq2seq"])
def test_hook_points_do_not_run_outside_a_hooked_forward(name):
    model, args, kwargs = _build(name)
    calls = []
    handles = [p.register_forward_hook(lambda m, i, o: calls.append(1)) for _, p in hook_points(model)]
    with torch.no_grad():
        model(*args, **kwargs)
        assert calls == []  # a plain forward never calls a hook point
        with enable_hooks(model):
            model(*args, **kwargs)
    assert len(calls) == len(hook_names(model))
    for handle in handles:
        handle.remove()
    _assert_unhooked(model)


def test_the_attention_only_gpt_has_no_feed_forward():
    model, args, _ = _build("gpt_attn_only")
    names = hook_names(model)
    assert not [n for n in names if "mlp" in n or ".ff." in n]
    assert "blocks.0.hook_resid_mid" in names
    for block in model.blocks:
        assert block.ff is None and not hasattr(block, "norm2")
    with torch.no_grad():
        _, cache = run_with_cache(model, *args)
    # without a feed-forward layer the stream leaves the block as it was after attention
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], cache["blocks.0.hook_resid_mid"], rtol=0, atol=0)


def test_the_numpy_engine_refuses_an_attention_only_gpt():
    from attnlab.scratch.gpt import NumpyGPT

    with pytest.raises(ConfigError, match="attention-only"):
        NumpyGPT(GPTConfig.from_name("nano", vocab_size=V, attn_only=True))


# ---------------------------------------------------------------------------
# The cache holds what trace= and output_attentions already give
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRACED)
def test_the_cache_matches_the_blocks_trace(name):
    model, args, kwargs = _build(name)
    trace: list[dict[str, Tensor]] = []
    with torch.no_grad():
        out = model(*args, **kwargs, trace=trace, output_attentions=True, output_hidden_states=True)
        _, cache = run_with_cache(model, *args, **kwargs)
    assert cache.layers == len(trace) == len(model.blocks)
    for i, step in enumerate(trace):
        b = f"blocks.{i}."
        torch.testing.assert_close(cache[b + "hook_attn_out"], step["attn_out"], **TOL)
        torch.testing.assert_close(cache[b + "hook_resid_mid"], step["after_attn"], **TOL)
        torch.testing.assert_close(cache[b + "hook_resid_post"], step["after_ff"], **TOL)
        if model.blocks[i].ff is not None:
            torch.testing.assert_close(cache[b + "hook_mlp_out"], step["ff_out"], **TOL)
        torch.testing.assert_close(cache[b + "attn.hook_pattern"], out.attentions[i], **TOL)
        torch.testing.assert_close(cache[b + "hook_resid_pre"], out.hidden_states[i], **TOL)
    torch.testing.assert_close(cache.stack("attn.hook_pattern"), torch.stack(list(out.attentions)), **TOL)
    if "hook_final_norm" in cache:
        torch.testing.assert_close(cache["hook_final_norm"], out.hidden_states[-1], **TOL)


def test_seq2seq_cross_attention_patterns_match_output_attentions():
    model, args, kwargs = _build("seq2seq")
    with torch.no_grad():
        out = model(*args, **kwargs, output_attentions=True)
        _, cache = run_with_cache(model, *args, **kwargs)
    for i in range(len(model.decoder_blocks)):
        b = f"decoder_blocks.{i}."
        torch.testing.assert_close(cache[b + "attn.hook_pattern"], out.attentions[i], **TOL)
        torch.testing.assert_close(cache[b + "cross_attn.hook_pattern"], out.cross_attentions[i], **TOL)
        pattern = cache[b + "cross_attn.hook_pattern"]  # (B, H, T, S): no weight on the padded source
        assert pattern[1, :, :, 7:].abs().max() == 0
    for i in range(len(model.encoder_blocks)):
        enc = out.extras["encoder_attentions"][i]
        torch.testing.assert_close(cache[f"encoder_blocks.{i}.attn.hook_pattern"], enc, **TOL)


@pytest.mark.parametrize("name", ["gpt_learned", "llama_gqa", "encoder", "seq2seq", "vit"])
def test_shapes_of_the_attention_hook_points(name):
    model, args, kwargs = _build(name)
    with torch.no_grad():
        _, cache = run_with_cache(model, *args, **kwargs)
    prefix = "decoder_blocks.0." if name == "seq2seq" else "blocks.0."
    attn = model.get_submodule(prefix + "attn")
    q, k, pattern, z = (cache[prefix + "attn." + p] for p in ("hook_q", "hook_k", "hook_pattern", "hook_z"))
    B, T, H, D = q.shape
    assert (H, D) == (attn.num_heads, attn.head_dim)
    assert k.shape == (B, T, attn.num_kv_heads, D)  # grouped-query attention: G key heads
    assert pattern.shape == (B, H, T, T) and z.shape == (B, T, H, D)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(B, H, T), **TOL)


# ---------------------------------------------------------------------------
# Per-head outputs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpt_learned", "llama_gqa", "encoder", "vit"])
def test_heads_outputs_through_the_out_projection_sum_to_attn_out(name):
    model, args, kwargs = _build(name)
    with torch.no_grad():
        _, cache = run_with_cache(model, *args, **kwargs)
    for i, block in enumerate(model.blocks):
        out = block.attn.out
        z = cache[f"blocks.{i}.attn.hook_z"]  # (B, T, H, D)
        H, D = z.shape[-2:]
        W_O = out.weight.view(out.out_features, H, D)  # (C, H, D): head h reads columns h*D .. (h+1)*D
        per_head = torch.einsum("bthd,chd->bthc", z, W_O)  # each head's write into the stream
        total = per_head.sum(2) + (out.bias if out.bias is not None else 0)
        torch.testing.assert_close(total, cache[f"blocks.{i}.hook_attn_out"], **TOL)


# ---------------------------------------------------------------------------
# Replacing an activation changes only what is downstream of it
# ---------------------------------------------------------------------------


def _noise_at(position: int) -> Callable[[Tensor, str], Tensor]:
    def patch(t: Tensor, name: str) -> Tensor:
        t = t.clone()
        t[:, position] = torch.randn(t[:, position].shape, generator=torch.Generator().manual_seed(7))
        return t

    return patch


@pytest.mark.parametrize("name", ["gpt_learned", "gpt_rotary", "llama_gqa", "gpt_attn_only"])
@pytest.mark.parametrize("point", ["blocks.0.hook_resid_pre", "blocks.1.hook_attn_in", "blocks.0.attn.hook_v"])
def test_patching_a_position_leaves_earlier_positions_of_a_causal_model_alone(name, point):
    model, args, _ = _build(name)
    with torch.no_grad():
        _, clean = run_with_cache(model, *args)
        patched = run_with_hooks(model, *args, fwd_hooks=[(point, _noise_at(5))])
    clean_logits = model.lm_head(clean["hook_final_norm"])
    torch.testing.assert_close(patched[:, :5], clean_logits[:, :5], rtol=0, atol=1e-6)
    assert (patched[:, 5:] - clean_logits[:, 5:]).abs().amax() > 1e-3  # the patch did reach the later positions


def test_patching_an_encoder_position_changes_every_position():
    model, args, kwargs = _build("encoder")
    with torch.no_grad():
        clean = model(*args, **kwargs).logits
        patched = run_with_hooks(model, *args, fwd_hooks=[("blocks.0.hook_resid_pre", _noise_at(5))], **kwargs)
    assert (patched - clean).abs().amax(-1)[0].min() > 1e-4  # bidirectional: every position of row 0 moves


def test_patching_a_later_layer_leaves_earlier_layers_alone():
    model, args, _ = _build("gpt_learned")
    patch = _noise_at(3)
    with torch.no_grad():
        _, clean = run_with_cache(model, *args)
        with hooks(model, [("blocks.1.hook_resid_pre", patch)]):
            _, patched = run_with_cache(model, *args)  # nested: the cache sees the patched value
    for name in clean:
        if name.startswith("blocks.0.") or name in ("hook_embed", "hook_pos_embed"):
            torch.testing.assert_close(patched[name], clean[name], rtol=0, atol=0)
    expected = patch(clean["blocks.0.hook_resid_post"], "")
    torch.testing.assert_close(patched["blocks.1.hook_resid_pre"], expected, rtol=0, atol=0)
    assert (patched["blocks.1.hook_resid_post"] - clean["blocks.1.hook_resid_post"]).abs().amax() > 1e-3


def test_replacing_the_pattern_is_what_attention_uses():
    """A uniform causal pattern in block 0: z is then the running mean of the values."""
    model, args, _ = _build("gpt_learned")

    def uniform(pattern: Tensor, name: str) -> Tensor:
        T = pattern.size(-1)
        causal = torch.ones(T, T).tril()
        return (causal / causal.sum(-1, keepdim=True)).expand_as(pattern)

    with torch.no_grad(), hooks(model, [("blocks.0.attn.hook_pattern", uniform)]):
        _, cache = run_with_cache(model, *args)
    v = cache["blocks.0.attn.hook_v"]  # (B, T, H, D)
    running_mean = v.cumsum(1) / torch.arange(1, v.size(1) + 1)[None, :, None, None]
    torch.testing.assert_close(cache["blocks.0.attn.hook_z"], running_mean, **TOL)


# ---------------------------------------------------------------------------
# Hooks never outlive their block; bad hooks and names fail clearly
# ---------------------------------------------------------------------------


def test_hooks_are_removed_when_the_forward_raises():
    model, args, _ = _build("gpt_learned")

    def boom(t: Tensor, name: str) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_with_hooks(model, *args, fwd_hooks=[("blocks.*.attn.hook_pattern", boom)])
    _assert_unhooked(model)
    with pytest.raises(KeyError), hooks(model, [("blocks.0.hook_resid_pre", lambda t, n: None)]):
        assert model.hooked
        raise KeyError("inside the block")
    _assert_unhooked(model)


def test_hooks_blocks_nest():
    model, args, _ = _build("gpt_learned")
    seen: list[str] = []
    with torch.no_grad(), hooks(model, [("hook_embed", lambda t, n: seen.append("outer"))]):
        with hooks(model, [("hook_embed", lambda t, n: seen.append("inner"))]):
            model(*args)
        assert model.hooked and model.blocks[0].attn.hooked  # leaving the inner block keeps the outer one on
        model(*args)
    assert seen == ["outer", "inner", "outer"]
    _assert_unhooked(model)


def test_a_hook_returning_the_wrong_shape_is_a_clear_error():
    model, args, _ = _build("gpt_learned")
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.hook_z must return None or a tensor of shape"):
        run_with_hooks(model, *args, fwd_hooks=[("blocks.0.attn.hook_z", lambda t, n: t[:, :-1])])
    with pytest.raises(ValueError, match="got float"):
        run_with_hooks(model, *args, fwd_hooks=[("hook_embed", lambda t, n: 1.0)])
    _assert_unhooked(model)


def test_unknown_names_are_config_errors_with_close_matches():
    model, args, _ = _build("gpt_learned")
    with pytest.raises(ConfigError, match=r"did you mean blocks\.0\.attn\.hook_pattern"):
        resolve_names(model, "blocks.0.attn.hook_patern")
    with pytest.raises(ConfigError, match="hook_names"):
        resolve_names(model, "blocks.7.*")  # no block 7, nothing close either
    with pytest.raises(ConfigError, match="did you mean"):
        run_with_cache(model, *args, names=["hook_embed", "hook_finalnorm"])
    with pytest.raises(ConfigError, match="did you mean"), hooks(model, [("blocks.0.hook_resid_prev", print)]):
        pass
    with pytest.raises(ConfigError, match="must be a function"):
        run_with_hooks(model, *args, fwd_hooks=[("hook_embed", "not a function")])
    _assert_unhooked(model)


def test_names_patterns_and_predicates_select_hook_points():
    model, args, _ = _build("gpt_learned")
    assert resolve_names(model, "blocks.*.attn.hook_pattern") == [f"blocks.{i}.attn.hook_pattern" for i in range(2)]
    assert resolve_names(model, lambda n: n.endswith("hook_z")) == ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    assert resolve_names(model, ["hook_final_norm", "hook_embed"]) == ["hook_embed", "hook_final_norm"]
    with torch.no_grad():
        _, cache = run_with_cache(model, *args, names="blocks.1.*")
    assert sorted(cache) == sorted(n for n in hook_names(model) if n.startswith("blocks.1."))
    with pytest.raises(KeyError, match="did you mean"):
        cache["blocks.1.hook_resid_prex"]


def test_an_undetached_cache_keeps_the_graph():
    model, args, _ = _build("gpt_learned")
    logits, cache = run_with_cache(model, *args, names="blocks.0.hook_resid_pre", detach=False)
    resid = cache["blocks.0.hook_resid_pre"]
    (grad,) = torch.autograd.grad(logits[:, -1].sum(), resid)
    assert grad.shape == resid.shape and grad[:, -1].abs().sum() > 0


# ---------------------------------------------------------------------------
# Forward order
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_hook_names_are_in_forward_order(name):
    model, args, kwargs = _build(name)
    fired: list[str] = []
    with torch.no_grad():
        run_with_hooks(model, *args, fwd_hooks=[(None, lambda t, n: fired.append(n))], **kwargs)
    assert fired == hook_names(model)


# ---------------------------------------------------------------------------
# Generation with a KV cache
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpt_learned", "gpt_rotary", "llama_gqa", "gpt_attn_only"])
@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_generation_with_a_cache_sees_the_ablation(name, kind):
    model, _, _ = _build(name)
    prompt = _ids(batch=1, length=5, seed=4)
    reference = _ids(batch=6, length=16, seed=5)
    ablation = head_ablation_hooks(model, [(1, 0), (0, 1)], kind=kind, reference=reference)
    settings = dict(max_new_tokens=12, temperature=0.0)
    with hooks(model, ablation):
        cached = generate(model, prompt, use_cache=True, **settings)
        recomputed = generate(model, prompt, use_cache=False, **settings)
    torch.testing.assert_close(cached, recomputed, rtol=0, atol=0)
    with torch.no_grad():  # the ablation matters: the recomputed logits differ from the clean ones
        ablated = run_with_hooks(model, cached, fwd_hooks=ablation)
        clean = model(cached).logits
    assert (ablated - clean).abs().amax() > 1e-3
    _assert_unhooked(model)


# ---------------------------------------------------------------------------
# Ablation
# ---------------------------------------------------------------------------


def test_zero_ablating_every_head_leaves_the_out_projection_bias():
    model, (args, _) = _gpt(positional="learned", bias=True), _lm_input()
    H = model.blocks[1].attn.num_heads
    with torch.no_grad(), hooks(model, head_ablation_hooks(model, [(1, h) for h in range(H)])):
        _, cache = run_with_cache(model, *args)
    bias = model.blocks[1].attn.out.bias
    torch.testing.assert_close(cache["blocks.1.hook_attn_out"], bias.expand_as(cache["blocks.1.hook_attn_out"]))
    torch.testing.assert_close(cache["blocks.1.hook_resid_mid"], cache["blocks.1.hook_resid_pre"] + bias)


def test_head_ablations_replace_only_the_chosen_head():
    model, args, _ = _build("gpt_learned")
    reference = _ids(batch=8, length=16, seed=6)
    with torch.no_grad():
        _, clean = run_with_cache(model, *args)
        _, ref = run_with_cache(model, reference)
    z_clean, z_ref = clean["blocks.0.attn.hook_z"], ref["blocks.0.attn.hook_z"]  # (B, T, H, D)
    T = z_clean.size(1)
    for kind in ("zero", "mean", "resample"):
        ablation = head_ablation_hooks(model, [(0, 1)], kind=kind, reference=reference, seed=3)
        with torch.no_grad(), hooks(model, ablation):
            _, cache = run_with_cache(model, *args)
        z = cache["blocks.0.attn.hook_z"]
        torch.testing.assert_close(z[:, :, 0], z_clean[:, :, 0], rtol=0, atol=0)  # the other head is untouched
        if kind == "zero":
            assert z[:, :, 1].abs().max() == 0
        elif kind == "mean":  # the mean over reference inputs and positions, at every position
            torch.testing.assert_close(z[:, :, 1], z_ref[:, :, 1].mean((0, 1)).expand_as(z[:, :, 1]))
        else:  # each input gets one reference input's value, position by position
            for row in z[:, :, 1]:
                distances = (z_ref[:, :T, 1] - row).abs().flatten(1).amax(1)
                assert distances.min() == 0


def test_mlp_ablations():
    model, args, _ = _build("gpt_learned")
    reference = _ids(batch=8, length=16, seed=6)
    with torch.no_grad():
        _, ref = run_with_cache(model, reference, names="blocks.1.hook_mlp_out")
        with hooks(model, mlp_ablation_hooks(model, [1])):
            _, zero = run_with_cache(model, *args)
        with hooks(model, mlp_ablation_hooks(model, [1], kind="mean", reference=reference)):
            _, mean = run_with_cache(model, *args)
    assert zero["blocks.1.hook_mlp_out"].abs().max() == 0
    torch.testing.assert_close(zero["blocks.1.hook_resid_post"], zero["blocks.1.hook_resid_mid"], rtol=0, atol=0)
    expected = ref["blocks.1.hook_mlp_out"].mean((0, 1)).expand_as(mean["blocks.1.hook_mlp_out"])
    torch.testing.assert_close(mean["blocks.1.hook_mlp_out"], expected)


def test_bad_ablations_are_config_errors():
    model, _, _ = _build("gpt_learned")
    with pytest.raises(ConfigError, match="L5H0 does not exist"):
        head_ablation_hooks(model, [(5, 0)])
    with pytest.raises(ConfigError, match="unknown ablation"):
        head_ablation_hooks(model, [(0, 0)], kind="shuffle")
    with pytest.raises(ConfigError, match="reference batch"):
        head_ablation_hooks(model, [(0, 0)], kind="mean")
    with pytest.raises(ConfigError, match="reference inputs at least as long"):
        ablation = head_ablation_hooks(model, [(0, 0)], kind="resample", reference=_ids(batch=4, length=3))
        run_with_hooks(model, _ids(), fwd_hooks=ablation)
    with pytest.raises(ConfigError, match="attention-only"):
        mlp_ablation_hooks(_build("gpt_attn_only")[0], [0])
    _assert_unhooked(model)


def test_a_hook_point_is_the_identity():
    x = torch.randn(2, 3)
    assert HookPoint()(x) is x
