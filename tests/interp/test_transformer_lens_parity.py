"""Parity with TransformerLens: the same logits and the same activations at corresponding hook points.

A reference no one here wrote (DESIGN.md, "Test habits"): an attnlab GPT with GPT-2's shape
(learned positions, GELU-tanh, biases, pre-norm, tied weights) is exported to a Hugging Face
`GPT2LMHeadModel` by attnlab's own exporter (`attnlab.interop.pretrained.EXPORTERS["gpt"]`),
and TransformerLens's `TransformerBridge` (transformer-lens >= 3; `HookedTransformer` is gone
in 4.x) is booted on that model. Then:

* the logits and every activation in `HOOK_MAP` agree (ours -> TransformerLens's name);
* patching the same activation the same way in both gives the same logits.

`parity_max_abs_diffs()` is also what benchmarks/bench_interp.py reports. Without
transformer-lens the module skips, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
try:
    import transformer_lens  # noqa: F401
    import transformers  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    message = f"transformer-lens parity needs transformer-lens and transformers ({error})"
    if IN_CI:
        pytest.fail(message + "; under CI they must be installed", pytrace=False)
    pytest.skip(message, allow_module_level=True)

from attnlab.interp import hook_names, run_with_cache, run_with_hooks  # noqa: E402
from attnlab.models.gpt import GPT, GPTConfig  # noqa: E402

VOCAB, CONTEXT, LAYERS = 26, 16, 2
ATOL = 1e-5  # float32: the two compute the same sums in different orders

# ours (attnlab) -> TransformerLens (TransformerBridge) hook point; {i} is the block index
HOOK_MAP: dict[str, str] = {
    "hook_embed": "hook_embed",
    "hook_pos_embed": "hook_pos_embed",
    "blocks.{i}.hook_resid_pre": "blocks.{i}.hook_resid_pre",
    "blocks.{i}.hook_attn_in": "blocks.{i}.ln1.hook_out",
    "blocks.{i}.attn.hook_q": "blocks.{i}.attn.hook_q",
    "blocks.{i}.attn.hook_k": "blocks.{i}.attn.hook_k",
    "blocks.{i}.attn.hook_v": "blocks.{i}.attn.hook_v",
    "blocks.{i}.attn.hook_attn_scores": "blocks.{i}.attn.hook_attn_scores",
    "blocks.{i}.attn.hook_pattern": "blocks.{i}.attn.hook_pattern",
    "blocks.{i}.attn.hook_z": "blocks.{i}.attn.hook_z",
    "blocks.{i}.hook_attn_out": "blocks.{i}.hook_attn_out",
    "blocks.{i}.hook_resid_mid": "blocks.{i}.hook_resid_mid",
    "blocks.{i}.hook_mlp_in": "blocks.{i}.ln2.hook_out",
    "blocks.{i}.ff.hook_pre": "blocks.{i}.mlp.hook_pre",
    "blocks.{i}.ff.hook_post": "blocks.{i}.mlp.hook_post",
    "blocks.{i}.hook_mlp_out": "blocks.{i}.hook_mlp_out",
    "blocks.{i}.hook_resid_post": "blocks.{i}.hook_resid_post",
    "hook_final_norm": "ln_final.hook_out",
}


def corresponding_names(num_layers: int) -> list[tuple[str, str]]:
    """(ours, TransformerLens's) name pairs of every hook point in `HOOK_MAP` for a model of `num_layers`."""
    pairs = []
    for ours, theirs in HOOK_MAP.items():
        layers = range(num_layers) if "{i}" in ours else [None]
        pairs += [(ours.format(i=i), theirs.format(i=i)) for i in layers]
    return pairs


def gpt2_like(seed: int = 0) -> GPT:
    """A small attnlab GPT with GPT-2's architecture and random weights of order one."""
    config = GPTConfig(
        vocab_size=VOCAB,
        max_seq_len=CONTEXT,
        num_layers=LAYERS,
        num_heads=4,
        embed_dim=32,
        positional="learned",
        activation="gelu_tanh",
        bias=True,
        norm_first=True,
        tie_weights=True,
    )
    model = GPT(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # larger than the initialisation, so every part matters to the logits
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(
                noise / p.shape[-1] ** 0.5 if p.dim() >= 2 else (1.0 + 0.1 * noise if "norm" in name else 0.1 * noise)
            )
    return model.eval()


def boot_bridge(model: GPT, folder: Path) -> Any:
    """Export `model` with attnlab's GPT-2 exporter and boot a TransformerBridge on the Hugging Face model."""
    import importlib

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    from attnlab.interop.pretrained import EXPORTERS

    module_name, _, function_name = EXPORTERS["gpt"][0].partition(":")
    export = getattr(importlib.import_module(module_name), function_name)
    export(model, folder / "hf")
    # the exported config has no bos/eos ids (no tokenizer); TransformerLens needs them inside the vocabulary
    hf = GPT2LMHeadModel.from_pretrained(
        folder / "hf", attn_implementation="eager", bos_token_id=0, eos_token_id=0, pad_token_id=0
    ).eval()
    # TransformerBridge wants a tokenizer that was saved and loaded the Hugging Face way
    raw = Tokenizer(models.WordLevel(vocab={chr(97 + i): i for i in range(VOCAB)}, unk_token="a"))
    raw.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="a", eos_token="a", pad_token="a").save_pretrained(
        folder / "tokenizer"
    )
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer")
    return TransformerBridge.boot_transformers("gpt2", hf_model=hf, tokenizer=tokenizer)


def _compare(name: str, ours: Tensor, theirs: Tensor) -> float:
    theirs = theirs.detach().to(ours.dtype)
    if ours.shape != theirs.shape:
        raise AssertionError(f"{name}: shapes differ, ours {tuple(ours.shape)}, TransformerLens {tuple(theirs.shape)}")
    if name.endswith("hook_attn_scores"):  # the masked entries: -inf (ours) or a large negative number
        visible = torch.ones(ours.shape[-2:], dtype=torch.bool).tril()
        assert bool((ours[..., ~visible] < -1e4).all()) and bool((theirs[..., ~visible] < -1e4).all()), name
        ours, theirs = ours[..., visible], theirs[..., visible]
    return float((ours - theirs).abs().max())


def parity_max_abs_diffs(seed: int = 0, batch: int = 2) -> dict[str, float]:
    """Max |ours - TransformerLens| of the logits and of every mapped activation (ours' names; L = all layers)."""
    model = gpt2_like(seed)
    ids = torch.randint(0, VOCAB, (batch, CONTEXT), generator=torch.Generator().manual_seed(seed + 1))
    with tempfile.TemporaryDirectory() as tmp:
        bridge = boot_bridge(model, Path(tmp))
        with torch.no_grad():
            ours_logits, ours = run_with_cache(model, ids)
            theirs_logits, theirs = bridge.run_with_cache(ids)
    diffs = {"logits": _compare("logits", ours_logits, theirs_logits)}
    for mine, other in corresponding_names(LAYERS):
        diffs[mine] = _compare(mine, ours[mine], theirs[other])
    return diffs


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # (the conftest sets it per test; the fixture runs first)
    model = gpt2_like()
    bridge = boot_bridge(model, tmp_path_factory.mktemp("tl"))
    ids = torch.randint(0, VOCAB, (2, CONTEXT), generator=torch.Generator().manual_seed(1))
    return model, bridge, ids


def test_the_map_covers_our_hook_points():
    """Every hook point of a GPT-2-shaped attnlab GPT has a TransformerLens twin in the map."""
    ours = {mine for mine, _ in corresponding_names(LAYERS)}
    assert ours == set(hook_names(gpt2_like()))


def test_same_logits_and_activations_as_transformer_lens(pair):
    model, bridge, ids = pair
    with torch.no_grad():
        ours_logits, ours = run_with_cache(model, ids)
        theirs_logits, theirs = bridge.run_with_cache(ids)
    assert _compare("logits", ours_logits, theirs_logits) < ATOL
    assert ours_logits.std() > 0.5  # not a degenerate model
    for mine, other in corresponding_names(LAYERS):
        assert other in theirs, f"TransformerLens has no {other} (the twin of our {mine})"
        diff = _compare(mine, ours[mine], theirs[other])
        assert diff < ATOL, f"{mine} <-> {other}: max abs difference {diff:.2e}"


def _position_patch(position: int, seed: int):
    def patch(t: Tensor, *_: Any, **__: Any) -> Tensor:
        t = t.clone()
        t[:, position] = torch.randn(t[:, position].shape, generator=torch.Generator().manual_seed(seed))
        return t

    return patch


def _zero_head(head: int):
    def patch(z: Tensor, *_: Any, **__: Any) -> Tensor:  # (B, T, H, D)
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    return patch


def _uniform_pattern(pattern: Tensor, *_: Any, **__: Any) -> Tensor:  # (B, H, T, S)
    causal = torch.ones(pattern.shape[-2:]).tril()
    return (causal / causal.sum(-1, keepdim=True)).expand_as(pattern).clone()


PATCHES = {
    "resid_pre_position_5": ("blocks.{i}.hook_resid_pre", _position_patch(5, seed=3)),
    "attn_in_position_2": ("blocks.{i}.hook_attn_in", _position_patch(2, seed=4)),
    "zero_head_2": ("blocks.{i}.attn.hook_z", _zero_head(2)),
    "uniform_pattern": ("blocks.{i}.attn.hook_pattern", _uniform_pattern),
    "mlp_post_position_7": ("blocks.{i}.ff.hook_post", _position_patch(7, seed=5)),
}


@pytest.mark.parametrize("layer", range(LAYERS))
@pytest.mark.parametrize("patch", list(PATCHES))
def test_the_same_patch_gives_the_same_logits(pair, patch, layer):
    model, bridge, ids = pair
    point, fn = PATCHES[patch]
    mine = point.format(i=layer)
    other = HOOK_MAP[point].format(i=layer)
    with torch.no_grad():
        clean = model(ids).logits
        ours = run_with_hooks(model, ids, fwd_hooks=[(mine, fn)])
        theirs = bridge.run_with_hooks(ids, fwd_hooks=[(other, fn)])
    assert (ours - clean).abs().max() > 1e-3, "the patch changed nothing: a useless test"
    assert _compare("logits", ours, theirs) < ATOL
