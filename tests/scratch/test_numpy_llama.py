"""The LLaMA-style model in the NumPy engine: `NumpyGPT` built from a `LlamaConfig` is `attnlab.models.llama.Llama`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.configs.gpt import GPTConfig
from attnlab.configs.llama import LlamaConfig
from attnlab.errors import CheckpointError, ConfigError
from attnlab.generate import generate as torch_generate
from attnlab.models.llama import Llama
from attnlab.models.registry import load_model
from attnlab.nn.block import TransformerBlock as TorchBlock
from attnlab.nn.positional import RotaryEmbedding
from attnlab.schedule import warmup_cosine_lr
from attnlab.scratch.block import TransformerBlock
from attnlab.scratch.gpt import MODEL_TYPES, NumpyGPT, load_numpy_gpt, model_type_of
from attnlab.scratch.optim import AdamW, clip_grad_norm
from attnlab.train import TorchEngine
from attnlab.train.engine import decay_groups
from attnlab.train.numpy_engine import NumpyEngine
from attnlab.train.recipes import check_numpy_engine

from .gradcheck import copy_torch_to_numpy, finite_difference_check

F64 = np.float64
VOCAB = 11

CONFIGS = {
    "default": dict(),  # rotary, RMSNorm, SwiGLU, 2 query heads sharing 1 key/value head, untied
    "tied-bias-nopos-gelu-ffdim": dict(tie_weights=True, bias=True, positional="none", activation="gelu", ff_dim=24),
    "postnorm-mha": dict(norm_first=False, num_kv_heads=2, num_heads=2),
    "gqa-4-of-2": dict(num_heads=4, num_kv_heads=2, embed_dim=32),
}


def _config(**overrides) -> LlamaConfig:
    return LlamaConfig.from_name("nano", vocab_size=VOCAB, **overrides)


def _pair(config: LlamaConfig, dtype=torch.float64, seed: int = 0) -> tuple[Llama, NumpyGPT]:
    """A torch Llama and a NumPy model with the same weights (copied from torch)."""
    torch.manual_seed(seed)
    ref = Llama(config).to(dtype)
    ours = NumpyGPT(config, dtype=F64 if dtype == torch.float64 else np.float32)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    return ref, ours


def _batch(B=3, T=20, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (B, T))
    targets = rng.integers(0, VOCAB, (B, T))
    targets[0, :4] = -100
    return ids, targets


# ---------------------------------------------------------------------------
# The block: RMSNorm + SwiGLU + grouped-query attention
# ---------------------------------------------------------------------------


def test_block_defaults_are_the_gpt_block():
    block = TransformerBlock(8, 2, 16, dtype=F64)
    assert {n for n, _ in block.named_parameters()} >= {"norm1.bias", "ff.fc1.weight", "ff.fc2.weight"}
    assert block.attn.num_kv_heads == 2
    with pytest.raises(ValueError, match="unknown feed_forward"):
        TransformerBlock(8, 2, 16, feed_forward="moe")
    with pytest.raises(ValueError, match="unknown norm"):
        TransformerBlock(8, 2, 16, norm="batch")


@pytest.mark.parametrize("norm_first", [True, False])
def test_llama_block_matches_torch(norm_first):
    torch.manual_seed(0)
    kw = dict(norm="rms", feed_forward="swiglu", num_kv_heads=2, activation="silu", norm_first=norm_first, bias=False)
    ref = TorchBlock(8, 4, 12, rotary=RotaryEmbedding(2), attn_impl="naive", **kw).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))  # move the norm gains off 1
    ours = TransformerBlock(8, 4, 12, rope_base=10000.0, dtype=F64, **kw)
    assert {n for n, _ in ours.named_parameters()} == {n for n, _ in ref.named_parameters()}
    assert "norm1.bias" not in dict(ours.named_parameters()) and "ff.w_gate.weight" in dict(ours.named_parameters())
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(0).normal(size=(2, 5, 8))
    R = np.random.default_rng(1).normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    y = ref(xt, is_causal=True, positions=torch.arange(5)).hidden
    (y * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(ours.forward(x, is_causal=True), y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.backward(R), xt.grad.numpy(), atol=1e-12)
    grads = dict(ours.named_grads())
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-12, err_msg=name)


@pytest.mark.parametrize("norm_first", [True, False])
def test_llama_block_finite_differences(norm_first):
    block = TransformerBlock(
        8,
        4,
        12,
        dropout=0.2,
        activation="silu",
        norm_first=norm_first,
        bias=True,
        dtype=F64,
        rng=np.random.default_rng(0),
        rope_base=10000.0,
        norm="rms",
        feed_forward="swiglu",
        num_kv_heads=2,
    )
    x = np.random.default_rng(1).normal(size=(2, 4, 8))
    R = np.random.default_rng(2).normal(size=x.shape)
    drops = [m for _, m in block.named_modules() if hasattr(m, "rng")]
    assert len(drops) == 3  # attention weights, attention branch, feed-forward branch

    def loss() -> float:
        for i, d in enumerate(drops):
            d.rng = np.random.default_rng(100 + i)  # fixed masks
        return float(np.sum(block.forward(x, is_causal=True) * R))

    block.zero_grad()
    loss()
    dx = block.backward(R)
    n = finite_difference_check(
        loss, {"x": x, **dict(block.named_parameters())}, {"x": dx, **dict(block.named_grads())}, coords=3
    )
    assert n == 3 * (1 + len(dict(block.named_parameters())))


# ---------------------------------------------------------------------------
# The model: names, init, same function and gradients as the PyTorch Llama
# ---------------------------------------------------------------------------


def test_model_type_comes_from_the_config():
    assert MODEL_TYPES == ("gpt", "llama")
    assert NumpyGPT(_config()).model_type == model_type_of(_config()) == "llama"
    assert NumpyGPT(GPTConfig.from_name("nano", vocab_size=VOCAB)).model_type == "gpt"
    with pytest.raises(ConfigError, match="builds gpt, llama models only"):
        model_type_of(object())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parameter_names_and_shapes_equal_torch(name):
    config = _config(**CONFIGS[name])
    ref = Llama(config)
    expected = {
        k: tuple(v.shape) for k, v in ref.state_dict().items() if not (config.tie_weights and k == "lm_head.weight")
    }
    ours = NumpyGPT(config)
    assert {k: v.shape for k, v in ours.params.items()} == expected
    assert ours.num_parameters() == ref.num_parameters()
    assert list(ours.params) == [n for n, _ in ref.named_parameters()]  # same order too
    assert ours.pos_emb is None


def test_initialisation_follows_llama():
    config = LlamaConfig.from_name("baby", vocab_size=65)
    params = NumpyGPT(config).params
    std, res_std = config.init_std, config.init_std / np.sqrt(2 * config.num_layers)
    assert params["tok_emb.weight"].std() == pytest.approx(std, rel=0.03)
    assert params["lm_head.weight"].std() == pytest.approx(std, rel=0.03)
    assert params["blocks.0.ff.w_gate.weight"].std() == pytest.approx(std, rel=0.03)
    assert params["blocks.1.attn.out.weight"].std() == pytest.approx(res_std, rel=0.03)
    assert params["blocks.3.ff.w_down.weight"].std() == pytest.approx(res_std, rel=0.03)
    np.testing.assert_array_equal(params["norm.weight"], 1.0)
    assert not any(n.endswith(".bias") for n in params)  # no biases, RMSNorm has none


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_loss_and_gradients_equal_torch(name):
    config = _config(**CONFIGS[name])
    ref, ours = _pair(config)
    ids, targets = _batch()
    out = ref(torch.tensor(ids), torch.tensor(targets))
    out.loss.backward()
    logits, loss = ours.forward(ids, targets)
    grads = ours.backward()
    np.testing.assert_allclose(logits, out.logits.detach().numpy(), rtol=0, atol=1e-10)
    assert loss == pytest.approx(out.loss.item(), abs=1e-10)
    ref_params = dict(ref.named_parameters())
    assert set(grads) == set(ref_params)
    for n, g in grads.items():
        np.testing.assert_allclose(g, ref_params[n].grad.numpy(), rtol=0, atol=1e-10, err_msg=n)


def test_padding_mask_and_float32_equal_torch():
    ref, ours = _pair(_config())
    ids, targets = _batch(B=2, T=6)
    keep = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    expected = ref(torch.tensor(ids), attention_mask=torch.tensor(keep)).logits.detach().numpy()
    np.testing.assert_allclose(ours.forward(ids, attention_mask=keep)[0], expected, atol=1e-10)
    ref32, ours32 = _pair(_config(), dtype=torch.float32)
    out = ref32(torch.tensor(ids), torch.tensor(targets))
    logits, loss = ours32.forward(ids, targets)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, out.logits.detach().numpy(), atol=1e-5)
    assert loss == pytest.approx(out.loss.item(), abs=1e-5)


@pytest.mark.parametrize("name", ["default", "tied-bias-nopos-gelu-ffdim"])
def test_whole_model_finite_differences(name):
    config = _config(**CONFIGS[name], dropout=0.1)
    model = NumpyGPT(config, dtype=F64, seed=3)
    ids, targets = _batch(B=2, T=7)

    def loss() -> float:
        model.dropout_rng.bit_generator.state = start_state  # the same dropout masks every call
        return model.forward(ids, targets)[1]

    start_state = model.dropout_rng.bit_generator.state
    model.zero_grad()
    loss()
    grads = model.backward()
    n = finite_difference_check(loss, model.params, grads, coords=3, rtol=1e-5, atol=1e-9)
    assert n == 3 * len(grads)


def test_adamw_training_steps_equal_torch():
    """Same weights, batches, warmup-cosine LR, clipping and AdamW (float64): same losses and weights."""
    ref, ours = _pair(_config())
    t_opt = torch.optim.AdamW(decay_groups(list(ref.named_parameters()), 0.1), lr=1e-3, betas=(0.9, 0.99))
    n_opt = AdamW(ours.param_groups(0.1), lr=1e-3, betas=(0.9, 0.99))
    schedule = dict(max_lr=3e-3, min_lr=3e-4, warmup_iters=2, decay_iters=6)
    for step in range(6):
        ids, targets = _batch(B=4, T=16, seed=step)
        lr = warmup_cosine_lr(step, **schedule)
        for g in t_opt.param_groups:
            g["lr"] = lr
        n_opt.lr = lr
        t_opt.zero_grad()
        loss_t = ref(torch.tensor(ids), torch.tensor(targets)).loss
        loss_t.backward()
        norm_t = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        t_opt.step()
        loss_n, grads = ours.loss_and_grads(ids, targets)
        norm_n = clip_grad_norm(grads, 0.5)
        n_opt.step(grads)
        assert loss_n == pytest.approx(loss_t.item(), abs=1e-10)
        assert norm_n == pytest.approx(float(norm_t), rel=1e-9)
    for n, p in ref.named_parameters():
        np.testing.assert_allclose(ours.params[n], p.detach().numpy(), rtol=0, atol=1e-9, err_msg=n)


def test_engine_steps_equal_torch_engine_in_float64():
    """`NumpyEngine` and `TorchEngine` on the same float64 weights and micro-batches: the same losses."""
    ref, ours = _pair(_config(max_seq_len=16))
    t_engine = TorchEngine(ref, weight_decay=0.1, grad_clip=0.5, device="cpu", precision="fp32", distributed=False)
    n_engine = NumpyEngine(ours, weight_decay=0.1, grad_clip=0.5)
    for step in range(4):
        micro = [dict(zip(("input_ids", "targets"), _batch(B=2, T=16, seed=10 * step + i))) for i in range(2)]
        loss_t, norm_t = t_engine.train_step(micro, 2e-3)
        loss_n, norm_n = n_engine.train_step(micro, 2e-3)
        assert loss_n == pytest.approx(loss_t, abs=1e-10)
        assert norm_n == pytest.approx(norm_t, rel=1e-9)
    batches = [dict(zip(("input_ids", "targets"), _batch(B=2, T=16, seed=99)))]
    assert n_engine.eval_loss(batches) == pytest.approx(t_engine.eval_loss(batches), abs=1e-10)
    assert n_engine.num_parameters() == t_engine.num_parameters()


def test_greedy_generation_equals_torch_generate():
    ref, ours = _pair(_config(max_seq_len=8))
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    expected = torch_generate(ref.eval(), torch.tensor(prompt), max_new_tokens=12, temperature=0.0).numpy()
    np.testing.assert_array_equal(ours.generate(prompt, 12, temperature=0.0), expected)  # crosses the window


# ---------------------------------------------------------------------------
# Checkpoints, both ways
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("tie_weights", [False, True])
def test_torch_checkpoint_loads_into_numpy(tmp_path, tie_weights):
    torch.manual_seed(1)
    ref = Llama(_config(tie_weights=tie_weights)).eval()
    ref.save(tmp_path / "ck")
    ids, _ = _batch(B=2, T=9)
    for dtype, atol in ((F64, 1e-5), (np.float32, 1e-5)):  # the weights are float32 in the file
        ours, tokenizer = load_numpy_gpt(tmp_path / "ck", dtype)
        assert ours.model_type == "llama" and tokenizer is None and not ours.training
        expected = ref(torch.tensor(ids)).logits.detach().numpy()
        np.testing.assert_allclose(ours.forward(ids)[0], expected, atol=atol)
    # float64 against the PyTorch model in float64 on the same (float32-stored) weights
    ours = NumpyGPT.from_checkpoint(tmp_path / "ck", F64)
    expected = ref.double()(torch.tensor(ids)).logits.detach().numpy()
    np.testing.assert_allclose(ours.forward(ids)[0], expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("tie_weights", [False, True])
@pytest.mark.parametrize("dtype", [F64, np.float32])
def test_numpy_checkpoint_loads_into_torch_llama(tmp_path, dtype, tie_weights):
    ours = NumpyGPT(_config(tie_weights=tie_weights), dtype=dtype, seed=5).eval()
    ours.save(tmp_path / "ck", metadata={"step": 7})
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["model_type"] == "llama" and meta["engine"] == "numpy" and meta["step"] == 7
    assert meta["tied"] == ({"lm_head.weight": "tok_emb.weight"} if tie_weights else {})
    again = NumpyGPT.from_checkpoint(tmp_path / "ck", dtype=dtype)  # its own weights back exactly
    for name, p in ours.params.items():
        np.testing.assert_array_equal(again.params[name], p)
    model, _ = load_model(tmp_path / "ck", dtype=torch.float64 if dtype == F64 else torch.float32)
    assert type(model) is Llama and model.config == ours.config
    ids, _ = _batch(B=2, T=9)
    got = model.eval()(torch.tensor(ids)).logits.detach().numpy()
    np.testing.assert_allclose(ours.forward(ids)[0], got, rtol=0, atol=1e-10 if dtype == F64 else 1e-5)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    NumpyGPT(_config()).save(tmp_path / "ck")
    cfg_path = tmp_path / "ck" / "config.json"
    meta = json.loads(cfg_path.read_text())
    (tmp_path / "ck" / "checkpoint.json").unlink()  # as a folder written before integrity records
    del meta["integrity"]
    meta["model_type"] = "vit"
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="only 'gpt' or 'llama' models"):
        NumpyGPT.from_checkpoint(tmp_path / "ck")


def test_check_numpy_engine_accepts_what_the_numpy_engine_implements():
    for model_type in MODEL_TYPES:
        check_numpy_engine(model_type)
    with pytest.raises(ConfigError, match="runs only gpt and llama models, not a vit model; use --engine torch"):
        check_numpy_engine("vit")


def test_numpy_llama_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from attnlab.configs.llama import LlamaConfig\n"
        "from attnlab.scratch.gpt import NumpyGPT\n"
        "m = NumpyGPT(LlamaConfig.from_name('nano'))\n"
        "m.forward(np.zeros((1, 4), dtype=np.int64), np.zeros((1, 4), dtype=np.int64)); m.backward()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# The command line: train, eval and generate with --engine numpy
# ---------------------------------------------------------------------------

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs.\n") * 12


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama_engines")
    corpus = d / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    common = ["--arch", "llama", "--data", str(corpus), "--preset", "nano", "--max-iters", "6", "--seed", "4"]
    common += ["--train.eval_interval=0", "--train.progress=false", "--train.batch_size=4"]
    assert main(["train", "--engine", "numpy", "--out", str(d / "numpy")] + common) == 0
    assert main(["train", "--engine", "torch", "--out", str(d / "torch")] + common) == 0
    return corpus, d / "numpy", d / "torch"


def test_cli_trains_a_numpy_llama(runs):
    _, numpy_run, _ = runs
    results = json.loads((numpy_run / "results.json").read_text())
    assert results["engine"] == "numpy" and results["step"] == 6
    assert json.loads((numpy_run / "config.json").read_text())["model_type"] == "llama"
    model, _ = load_model(numpy_run)
    assert type(model) is Llama


@pytest.mark.parametrize("run_index", [1, 2])
def test_cli_eval_and_greedy_generate_agree_across_engines(runs, capsys, run_index):
    corpus, checkpoint = runs[0], runs[run_index]
    losses, texts = {}, {}
    for engine in ("numpy", "torch"):
        assert main(["eval", "--engine", engine, "--checkpoint", str(checkpoint), "--data", str(corpus), "--json"]) == 0
        losses[engine] = json.loads(capsys.readouterr().out)["loss"]
        args = ["--prompt", "the quick", "--max-new-tokens", "20", "--temperature", "0"]
        assert main(["generate", "--engine", engine, "--checkpoint", str(checkpoint), *args]) == 0
        texts[engine] = capsys.readouterr().out
    assert losses["numpy"] == pytest.approx(losses["torch"], rel=1e-5)
    assert texts["numpy"] == texts["torch"] and texts["numpy"].startswith("the quick")


def test_cli_resumes_a_numpy_llama(runs, tmp_path):
    corpus, numpy_run, _ = runs
    out = tmp_path / "resumed"
    shutil.copytree(numpy_run, out)
    args = ["train", "--engine", "numpy", "--data", str(corpus), "--out", str(out), "--resume", "--max-iters", "8"]
    assert main([*args, "--train.progress=false"]) == 0
    assert json.loads((out / "results.json").read_text())["step"] == 8
    assert NumpyGPT.from_checkpoint(out).model_type == "llama"
