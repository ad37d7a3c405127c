"""The NumPy GPT computes the PyTorch GPT's function, gradients, checkpoints and training steps."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from attnlab.errors import CheckpointError, ConfigError
from attnlab.generate import generate as torch_generate
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.registry import load_model
from attnlab.schedule import warmup_cosine_lr
from attnlab.scratch.gpt import NumpyGPT, load_numpy_gpt
from attnlab.scratch.optim import AdamW, clip_grad_norm
from attnlab.tokenizers import CharTokenizer
from attnlab.train.engine import decay_groups

from .gradcheck import finite_difference_check

F64 = np.float64
VOCAB = 11

CONFIGS = {
    "default": dict(),
    "bias-untied-postnorm-tanh-sinusoidal": dict(
        bias=True, tie_weights=False, norm_first=False, activation="gelu_tanh", positional="sinusoidal"
    ),
    "relu-nopos-bias": dict(activation="relu", positional="none", bias=True),
    "fourier-ffdim": dict(positional="fourier", ff_dim=24),
    "rotary": dict(positional="rotary"),
    "rotary-postnorm-bias": dict(positional="rotary", norm_first=False, bias=True),
}


def _config(**overrides) -> GPTConfig:
    return GPTConfig.from_name("nano", vocab_size=VOCAB, **overrides)


def _pair(config: GPTConfig, dtype=torch.float64, seed: int = 0) -> tuple[GPT, NumpyGPT]:
    """A torch GPT and a NumPy GPT with the same weights (copied from torch)."""
    torch.manual_seed(seed)
    ref = GPT(config).to(dtype)
    ours = NumpyGPT(config, dtype=F64 if dtype == torch.float64 else np.float32)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    if config.positional in ("sinusoidal", "fourier"):
        # the fixed tables agree to float32 rounding (test_layers); share torch's exactly here
        ours.pos_emb.table = ref.pos_emb.table.numpy().astype(ours.dtype)
    return ref, ours


def _batch(B=3, T=20, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (B, T))
    targets = rng.integers(0, VOCAB, (B, T))
    targets[0, :4] = -100
    return ids, targets


# ---------------------------------------------------------------------------
# Names, shapes, initialisation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parameter_names_and_shapes_equal_torch(name):
    config = _config(**CONFIGS[name])
    ref = GPT(config)
    expected = {
        k: tuple(v.shape) for k, v in ref.state_dict().items() if not (config.tie_weights and k == "lm_head.weight")
    }
    ours = NumpyGPT(config)
    assert {k: v.shape for k, v in ours.params.items()} == expected
    assert ours.num_parameters() == ref.num_parameters()
    assert list(ours.params) == [n for n, _ in ref.named_parameters()]  # same order too


def test_initialisation_follows_gpt2():
    config = GPTConfig.from_name("baby", vocab_size=65, bias=True)
    params = NumpyGPT(config).params
    std, res_std = config.init_std, config.init_std / np.sqrt(2 * config.num_layers)
    assert params["tok_emb.weight"].std() == pytest.approx(std, rel=0.03)
    assert params["blocks.0.attn.qkv.weight"].std() == pytest.approx(std, rel=0.03)
    assert params["blocks.1.attn.out.weight"].std() == pytest.approx(res_std, rel=0.03)
    assert params["blocks.3.ff.fc2.weight"].std() == pytest.approx(res_std, rel=0.03)
    np.testing.assert_array_equal(params["blocks.0.ff.fc1.bias"], 0.0)
    np.testing.assert_array_equal(params["blocks.2.norm1.weight"], 1.0)
    np.testing.assert_array_equal(params["norm.bias"], 0.0)
    assert all(p.dtype == np.float32 for p in params.values())
    # the seed decides the weights
    other = NumpyGPT(config, seed=1).params["tok_emb.weight"]
    assert not np.array_equal(other, params["tok_emb.weight"])
    np.testing.assert_array_equal(NumpyGPT(config).params["tok_emb.weight"], params["tok_emb.weight"])


def test_rotary_tables_equal_the_torch_ones():
    from attnlab.nn.positional import RotaryEmbedding
    from attnlab.scratch.positional import rotary_tables

    for dtype, np_dtype in ((torch.float32, np.float32), (torch.float64, F64)):
        cos, sin = RotaryEmbedding(16).cos_sin(torch.arange(50), dtype)
        ncos, nsin = rotary_tables(50, 16, dtype=np_dtype)
        # same angles bit for bit; the two libraries' cos/sin may differ in the last bit
        np.testing.assert_allclose(ncos, cos.numpy(), rtol=2e-7 if np_dtype == np.float32 else 1e-15, atol=1e-15)
        np.testing.assert_allclose(nsin, sin.numpy(), rtol=2e-7 if np_dtype == np.float32 else 1e-15, atol=1e-15)


def test_scratch_package_never_imports_torch():
    code = (
        "import sys, numpy as np\n"
        "import attnlab.scratch, attnlab.scratch.gpt, attnlab.scratch.optim, attnlab.scratch.attention\n"
        "from attnlab.models.gpt_config import GPTConfig\n"
        "m = attnlab.scratch.gpt.NumpyGPT(GPTConfig.from_name('nano'))\n"
        "m.forward(np.zeros((1, 4), dtype=np.int64), np.zeros((1, 4), dtype=np.int64)); m.backward()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# Same function, same gradients (float64)
# ---------------------------------------------------------------------------


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
    ref_params = dict(ref.named_parameters())  # tied weights listed once, as in ours
    assert set(grads) == set(ref_params)
    for n, g in grads.items():
        np.testing.assert_allclose(g, ref_params[n].grad.numpy(), rtol=0, atol=1e-10, err_msg=n)


def test_padding_mask_and_last_only_equal_torch():
    ref, ours = _pair(_config())
    ids, _ = _batch(B=2, T=6)
    keep = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    expected = ref(torch.tensor(ids), attention_mask=torch.tensor(keep)).logits.detach().numpy()
    logits, loss = ours.forward(ids, attention_mask=keep)
    assert loss is None
    np.testing.assert_allclose(logits, expected, atol=1e-10)
    last, _ = ours.forward(ids, last_only=True)
    np.testing.assert_allclose(last, ours.forward(ids)[0][:, -1:], atol=1e-12)


def test_float32_model_matches_torch_float32():
    ref, ours = _pair(_config(), dtype=torch.float32)
    ids, targets = _batch()
    out = ref(torch.tensor(ids), torch.tensor(targets))
    logits, loss = ours.forward(ids, targets)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, out.logits.detach().numpy(), atol=1e-5)
    assert loss == pytest.approx(out.loss.item(), abs=1e-5)
    assert all(g.dtype == np.float32 for g in ours.backward().values())


@pytest.mark.parametrize("name", ["default", "bias-untied-postnorm-tanh-sinusoidal"])
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
    assert n == 3 * len(grads)  # three coordinates of every parameter


def test_gradient_accumulation_equals_one_big_batch():
    model = NumpyGPT(_config(), dtype=F64)
    ids, _ = _batch(B=4, T=8)
    targets = (ids + 1) % VOCAB  # every position scored: both halves weigh the same
    model.zero_grad()
    model.forward(ids, targets)
    full = {k: v.copy() for k, v in model.backward().items()}
    model.zero_grad()
    for half in (slice(0, 2), slice(2, 4)):
        model.forward(ids[half], targets[half])
        model.backward(scale=0.5)
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, full[k], atol=1e-13, err_msg=k)


def test_future_tokens_do_not_change_past_logits():
    model = NumpyGPT(_config(), dtype=F64)
    ids, _ = _batch(B=1, T=10)
    logits, _ = model.forward(ids)
    changed = ids.copy()
    changed[0, 6:] = (changed[0, 6:] + 1) % VOCAB
    np.testing.assert_allclose(model.forward(changed)[0][:, :6], logits[:, :6], atol=1e-13)


def test_input_validation():
    model = NumpyGPT(_config())
    with pytest.raises(ValueError, match="exceeds the context of 32"):
        model.forward(np.zeros((1, 33), dtype=np.int64))
    with pytest.raises(RuntimeError, match="forward pass with targets"):
        model.forward(np.zeros((1, 3), dtype=np.int64))
        model.backward()


# ---------------------------------------------------------------------------
# Dropout and modes
# ---------------------------------------------------------------------------


def test_dropout_is_active_in_train_mode_only_and_seeded():
    config = _config(dropout=0.2)
    ids, _ = _batch(B=2, T=8)
    a, b = NumpyGPT(config, seed=5), NumpyGPT(config, seed=5)
    first = a.forward(ids)[0]
    np.testing.assert_array_equal(first, b.forward(ids)[0])  # same seed, same masks
    assert not np.allclose(first, a.forward(ids)[0])  # fresh masks each call
    a.eval()
    np.testing.assert_array_equal(a.forward(ids)[0], a.forward(ids)[0])


# ---------------------------------------------------------------------------
# Checkpoints in both directions
# ---------------------------------------------------------------------------


def test_numpy_checkpoint_loads_into_torch_gpt(tmp_path):
    config = _config(bias=True)
    ours = NumpyGPT(config, dtype=F64, seed=2)
    tok = CharTokenizer.train("hello world abc")  # 11 ids: as many as the embedding table has rows
    ours.save(tmp_path / "ck", tokenizer=tok, metadata={"step": 7})
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["engine"] == "numpy" and meta["dtype"] == "float64" and meta["step"] == 7
    assert meta["tied"] == {"lm_head.weight": "tok_emb.weight"}
    # the NumPy engine reads its float64 weights back exactly
    again = NumpyGPT.from_checkpoint(tmp_path / "ck", dtype=F64)
    for name, p in ours.params.items():
        np.testing.assert_array_equal(again.params[name], p)
    ref, tokenizer = load_model(tmp_path / "ck", dtype=torch.float64)
    assert tokenizer.decode(tokenizer.encode("hello")) == "hello"
    ids, _ = _batch()
    expected = ref(torch.tensor(ids)).logits.detach().numpy()
    # float64 weights load into a float64 torch GPT unrounded
    ours.eval()
    np.testing.assert_allclose(ours.forward(ids)[0], expected, rtol=0, atol=1e-10)


def test_numpy_float32_checkpoint_loads_into_torch_gpt(tmp_path):
    ours = NumpyGPT(_config(tie_weights=False), seed=4)
    ours.save(tmp_path / "ck")
    ref, _ = load_model(tmp_path / "ck")
    ids, _ = _batch()
    np.testing.assert_allclose(ours.forward(ids)[0], ref(torch.tensor(ids)).logits.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("tie_weights", [True, False])
def test_torch_checkpoint_loads_into_numpy_gpt(tmp_path, tie_weights):
    torch.manual_seed(0)
    ref = GPT(_config(tie_weights=tie_weights, positional="learned"))
    ref.save(tmp_path / "ck", tokenizer=CharTokenizer.train("hello world abc"))
    ids, _ = _batch()
    ours64, tokenizer = load_numpy_gpt(tmp_path / "ck", dtype=F64)
    assert tokenizer.vocab_size == VOCAB
    ref64 = GPT.from_checkpoint(tmp_path / "ck").double()
    np.testing.assert_allclose(
        ours64.forward(ids)[0], ref64(torch.tensor(ids)).logits.detach().numpy(), rtol=0, atol=1e-10
    )
    ours32 = NumpyGPT.from_checkpoint(tmp_path / "ck")
    assert ours32.dtype == np.float32 and not ours32.training
    np.testing.assert_allclose(ours32.forward(ids)[0], ref.eval()(torch.tensor(ids)).logits.detach().numpy(), atol=1e-5)
    if tie_weights:  # the head still shares the embedding array after loading
        assert ours32.lm_head.params["weight"] is ours32.tok_emb.params["weight"]


def test_bad_checkpoints_raise_checkpoint_error(tmp_path):
    NumpyGPT(_config()).save(tmp_path / "ck")
    cfg_path = tmp_path / "ck" / "config.json"
    meta = json.loads(cfg_path.read_text())
    meta["config"]["num_layers"] = 3  # weights for 2 layers, config says 3
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config.num_layers is 3 there but the checkpoint was saved with 2"):
        NumpyGPT.from_checkpoint(tmp_path / "ck")
    # as a folder written before manifests and integrity records: the weights are checked against the config
    (tmp_path / "ck" / "checkpoint.json").unlink()
    del meta["integrity"]
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="missing blocks.2"):
        NumpyGPT.from_checkpoint(tmp_path / "ck")
    meta["model_type"] = "vit"
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="only 'gpt'"):
        NumpyGPT.from_checkpoint(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="does not exist"):
        NumpyGPT.from_checkpoint(tmp_path / "nowhere")


# ---------------------------------------------------------------------------
# Training: same steps as PyTorch, and it learns
# ---------------------------------------------------------------------------


def test_param_groups_equal_the_torch_trainers_split():
    config = _config(bias=True, tie_weights=False)
    ref = GPT(config)
    ref_groups = decay_groups(list(ref.named_parameters()), 0.1)
    names = {id(p): n for n, p in ref.named_parameters()}
    groups = NumpyGPT(config).param_groups(0.1)
    for ours, theirs in zip(groups, ref_groups):
        assert ours["names"] == [names[id(p)] for p in theirs["params"]]
        assert ours["weight_decay"] == theirs["weight_decay"]


@pytest.mark.parametrize("name", ["default", "bias-untied-postnorm-tanh-sinusoidal"])
def test_adamw_training_steps_equal_torch(name):
    """Same weights, batches, warmup-cosine LR, clipping and AdamW: same losses and weights."""
    config = _config(**CONFIGS[name])
    ref, ours = _pair(config)
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


def test_tiny_gpt_overfits_one_batch():
    model = NumpyGPT(GPTConfig.from_name("nano", vocab_size=VOCAB, max_seq_len=16), seed=0)
    opt = AdamW(model.param_groups(0.0), lr=1e-2)
    ids, targets = _batch(B=4, T=16, seed=1)
    first = None
    for _ in range(120):
        loss, grads = model.loss_and_grads(ids, targets)
        first = loss if first is None else first
        clip_grad_norm(grads, 1.0)
        opt.step(grads)
    assert first > 2.0  # ~log(11) at the start
    assert loss < 0.1, f"loss {first:.3f} -> {loss:.3f}: the model did not memorise the batch"


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def test_greedy_generation_equals_torch_generate():
    ref, ours = _pair(_config(max_seq_len=8))
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    expected = torch_generate(ref.eval(), torch.tensor(prompt), max_new_tokens=12, temperature=0.0).numpy()
    got = ours.generate(prompt, 12, temperature=0.0)  # crosses the 8-token window
    np.testing.assert_array_equal(got, expected)


def test_sampling_is_seeded_and_respects_top_k():
    model = NumpyGPT(_config(), seed=0)
    prompt = np.array([[1, 2]])
    a = model.generate(prompt, 20, temperature=1.5, seed=3)
    np.testing.assert_array_equal(a, model.generate(prompt, 20, temperature=1.5, seed=3))
    assert a.shape == (1, 22) and a.dtype == np.int64
    # top_k = 1 and a tiny top_p both reduce sampling to greedy decoding
    greedy = model.generate(prompt, 10, temperature=0.0)
    np.testing.assert_array_equal(model.generate(prompt, 10, top_k=1, seed=0), greedy)
    np.testing.assert_array_equal(model.generate(prompt, 10, top_p=1e-6, seed=0), greedy)
    # a single prompt as a list (what the CLI passes) gives a single sequence back
    np.testing.assert_array_equal(model.generate([1, 2], 10, temperature=0.0), greedy[0])
    with pytest.raises(ConfigError, match="top_p"):
        model.generate(prompt, 1, top_p=1.5)
