"""Tests for attnlab.models.baselines: MLP, ConvNet, RNN/LSTM/GRU and the gradient probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.config import from_dict
from attnlab.data.recall_task import RecallTask
from attnlab.errors import ConfigError
from attnlab.models.baselines import (
    ConvNetClassifier,
    ConvNetConfig,
    MLPClassifier,
    MLPConfig,
    RecurrentConfig,
    RecurrentModel,
    build_image_baseline,
    gradient_norms_through_time,
)
from attnlab.models.outputs import ModelOutput
from attnlab.utils import count_parameters

CELLS = ("rnn", "lstm", "gru")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models on a shared 2-core machine: two OpenMP threads spin against other
    processes and run some steps 50x slower than one thread does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------
# Shapes, parameter counts, configs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("preset, size", [("mnist", 28), ("digits", 8), ("tiny", 28)])
@pytest.mark.parametrize("kind", ["mlp", "convnet"])
def test_image_model_shapes(kind, preset, size):
    torch.manual_seed(0)
    model = build_image_baseline(kind, preset)
    images, targets = torch.rand(5, 1, size, size), torch.tensor([0, 1, 2, 3, 9])
    out = model(images)
    assert isinstance(out, ModelOutput) and out.logits.shape == (5, 10) and out.loss is None
    out = model(images, targets)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, targets))
    with pytest.raises(ConfigError, match="image_size"):
        model(torch.rand(5, 1, size + 2, size + 2))


def test_image_parameter_counts_by_formula():
    mlp = MLPClassifier(MLPConfig.from_name("mnist"))
    assert count_parameters(mlp) == (784 * 192 + 192) + (192 * 96 + 96) + (96 * 10 + 10) == 170_218
    conv = ConvNetClassifier(ConvNetConfig.from_name("mnist"))
    convs = 1 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9  # no conv bias before BatchNorm
    norms = 2 * (32 + 64 + 64)  # BatchNorm scale and shift
    head = (64 * 3 * 3 * 128 + 128) + (128 * 10 + 10)  # 28 -> 14 -> 7 -> 3 after three pools
    assert count_parameters(conv) == convs + norms + head == 131_050
    assert ConvNetConfig.from_name("mnist").feature_size == 3
    # Without BatchNorm the convolutions get biases instead; without hidden layer the head is one Linear.
    plain = ConvNetClassifier(ConvNetConfig(channels=(8,), batch_norm=False, hidden_dim=0))
    assert count_parameters(plain) == (1 * 8 * 9 + 8) + (8 * 14 * 14 * 10 + 10)
    logistic = MLPClassifier(MLPConfig(hidden_dims=()))
    assert count_parameters(logistic) == 784 * 10 + 10


@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_recurrent_shapes_and_parameter_counts(cell, gates):
    V, K, E, N = 11, 5, 6, 7
    model = RecurrentModel(RecurrentConfig(cell=cell, vocab_size=V, num_classes=K, embed_dim=E, hidden_dim=N))
    per_layer = gates * (N * E + N * N + 2 * N)  # W_ih, W_hh, b_ih, b_hh per gate
    assert count_parameters(model) == V * E + per_layer + (N * K + K)
    ids = torch.randint(0, V, (3, 9))
    targets = torch.full((3, 9), -100)
    targets[:, -1] = torch.tensor([0, 4, 2])
    out = model(ids, targets)
    assert out.logits.shape == (3, 9, K)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[:, -1], targets[:, -1]))
    # Two layers: the state has one slice a layer.
    deep = RecurrentModel(RecurrentConfig(cell=cell, vocab_size=V, embed_dim=E, hidden_dim=N, num_layers=2))
    assert count_parameters(deep) == V * E + per_layer + gates * (N * N + N * N + 2 * N) + (N * V + V)
    state = deep(ids).extras["state"]
    h = state[0] if cell == "lstm" else state
    assert h.shape == (2, 3, N)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_steps_matches_fused_forward(cell):
    torch.manual_seed(0)
    model = RecurrentModel(RecurrentConfig(cell=cell, vocab_size=9, embed_dim=5, hidden_dim=6, num_layers=2)).eval()
    ids = torch.randint(0, 9, (4, 7))
    logits, states = model.forward_steps(ids)
    torch.testing.assert_close(logits, model(ids).logits)
    assert len(states) == 7 and states[0].shape == (2, 4, 6)


def test_lstm_forget_bias_and_state_continuation():
    model = RecurrentModel(RecurrentConfig(cell="lstm", vocab_size=5, hidden_dim=4, forget_bias=1.0))
    total = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0  # gate order: input, forget, cell, output
    torch.testing.assert_close(total[4:8], torch.ones(4))
    # Feeding a sequence in two halves with the carried state equals feeding it whole.
    ids = torch.randint(0, 5, (2, 8))
    first = model(ids[:, :5])
    second = model(ids[:, 5:], state=first.extras["state"])
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), model(ids).logits)


def test_config_validation_presets_and_strict_loading():
    bad = [
        (MLPConfig, dict(hidden_dims=(0,))),
        (MLPConfig, dict(dropout=1.0)),
        (MLPConfig, dict(num_classes=1)),
        (ConvNetConfig, dict(kernel_size=4)),
        (ConvNetConfig, dict(channels=())),
        (ConvNetConfig, dict(hidden_dim=-1)),
        (RecurrentConfig, dict(hidden_dim=0)),
        (RecurrentConfig, dict(cell="transformer")),
        (RecurrentConfig, dict(num_classes=0)),
    ]
    for cls, kwargs in bad:
        with pytest.raises(ConfigError):
            cls(**kwargs)
    with pytest.raises(ConfigError, match="mnist"):
        MLPConfig.from_name("huge")
    with pytest.raises(ConfigError, match="hiden_dims"):
        MLPConfig.from_name("mnist", hiden_dims=(3,))
    with pytest.raises(ConfigError, match="mlp or convnet"):
        build_image_baseline("vit")
    assert RecurrentConfig.from_name("small", cell="gru").cell == "gru"
    assert RecurrentConfig(vocab_size=13).output_size == 13
    cfg = from_dict(ConvNetConfig, {"channels": "16, 32", "hidden_dim": "0"})
    assert cfg.channels == (16, 32) and cfg.hidden_dim == 0
    with pytest.raises(ConfigError, match="unknown ConvNetConfig key"):
        from_dict(ConvNetConfig, {"chanels": [16]})


# ---------------------------------------------------------------------------
# Every model can fit a tiny batch
# ---------------------------------------------------------------------------


def _fit(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, steps: int, lr: float) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    first = None
    for _ in range(steps):
        loss = model(inputs, targets).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, loss.item()


@pytest.mark.parametrize("kind", ["mlp", "convnet"])
def test_image_models_overfit_a_tiny_batch(kind):
    torch.manual_seed(0)
    model = build_image_baseline(kind, "tiny")
    images, labels = torch.rand(16, 1, 28, 28), torch.arange(16) % 10  # random pixels: pure memorisation
    first, last = _fit(model, images, labels, steps=40, lr=1e-2)
    assert last < 0.1 * first
    model.eval()
    with torch.no_grad():
        assert (model(images).logits.argmax(-1) == labels).all()


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_models_overfit_a_tiny_batch(cell):
    torch.manual_seed(0)
    task = RecallTask(num_symbols=4, seq_len=6)
    batch = task.sample(16, seed=0).to_torch()
    model = RecurrentModel(RecurrentConfig.from_name("tiny", cell=cell, vocab_size=task.vocab_size, num_classes=4))
    first, last = _fit(model, batch.input_ids, batch.targets, steps=60, lr=2e-2)
    assert last < 0.1 * first
    model.eval()
    with torch.no_grad():
        assert (model(batch.input_ids).logits[:, -1].argmax(-1) == batch.answers).all()


# ---------------------------------------------------------------------------
# Gradients through time
# ---------------------------------------------------------------------------


def _reference_hidden_grad_norms(model: RecurrentModel, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d loss / d h_t by unrolling torch.nn.RNNCell with the model's weights (one layer, tanh)."""
    cell = nn.RNNCell(model.config.embed_dim, model.config.hidden_dim)
    with torch.no_grad():
        cell.weight_ih.copy_(model.rnn.weight_ih_l0)
        cell.weight_hh.copy_(model.rnn.weight_hh_l0)
        cell.bias_ih.copy_(model.rnn.bias_ih_l0)
        cell.bias_hh.copy_(model.rnn.bias_hh_l0)
    x = model.tok_emb(ids)
    h = torch.zeros(ids.size(0), model.config.hidden_dim)
    hs = []
    for t in range(ids.size(1)):
        h = cell(x[:, t], h)
        h.retain_grad()
        hs.append(h)
    logits = model.head(torch.stack(hs, 1))
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum")
    loss.backward()
    return torch.stack([h.grad.norm(dim=-1).mean() for h in hs])


def test_hidden_gradient_norms_match_an_unrolled_rnn_cell():
    torch.manual_seed(0)
    task = RecallTask(num_symbols=4, seq_len=12)
    batch = task.sample(8, seed=0).to_torch()
    model = RecurrentModel(
        RecurrentConfig(cell="rnn", vocab_size=task.vocab_size, num_classes=4, embed_dim=5, hidden_dim=6)
    )
    ours = gradient_norms_through_time(model, batch.input_ids, batch.targets, wrt="hidden")
    reference = _reference_hidden_grad_norms(model, batch.input_ids, batch.targets)
    assert ours.shape == (12,) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, reference.detach().numpy(), rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_embedding_gradient_norms_match_autograd_and_respect_causality(cell):
    torch.manual_seed(0)
    model = RecurrentModel(
        RecurrentConfig(cell=cell, vocab_size=9, num_classes=9, embed_dim=4, hidden_dim=5, dropout=0.5)
    )
    ids = torch.randint(0, 9, (6, 10))
    targets = torch.full((6, 10), -100)
    targets[:, 6] = torch.randint(0, 9, (6,))  # score position 6 only
    model.train()
    ours = gradient_norms_through_time(model, ids, targets, wrt="embedding")
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # parameter gradients untouched
    # Reference: plain autograd on the embedding output, in eval mode (no dropout).
    model.eval()
    x = model.tok_emb(ids).detach().requires_grad_(True)
    outputs, _ = model.rnn(x)
    logits = model.head(outputs)
    loss = F.cross_entropy(logits.reshape(-1, 9), targets.reshape(-1), ignore_index=-100, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    np.testing.assert_allclose(ours, grad.norm(dim=-1).mean(0).numpy(), rtol=1e-5)
    # Causality: tokens after the scored position cannot influence its loss.
    assert np.all(ours[7:] == 0.0) and np.all(ours[:7] > 0.0)
    hidden = gradient_norms_through_time(model, ids, targets, wrt="hidden")
    assert np.all(hidden[7:] == 0.0) and np.all(hidden[:7] > 0.0)
    # Frozen embedding weights give the same picture.
    model.tok_emb.weight.requires_grad_(False)
    np.testing.assert_allclose(gradient_norms_through_time(model, ids, targets, wrt="embedding"), ours, rtol=1e-6)


def test_plain_rnn_gradient_vanishes_with_distance():
    # An untrained tanh RNN: the gradient reaching the first step of a 40-step sequence
    # is orders of magnitude below the one at the scored last step (Bengio et al. 1994).
    torch.manual_seed(0)
    task = RecallTask(num_symbols=8, seq_len=40)
    batch = task.sample(64, seed=0, distances=39).to_torch()
    model = RecurrentModel(RecurrentConfig.from_name("small", cell="rnn", vocab_size=task.vocab_size, num_classes=8))
    norms = gradient_norms_through_time(model, batch.input_ids, batch.targets)
    assert norms[0] < 1e-4 * norms[-1]
    assert np.all(np.diff(np.log(norms[-10:])) > 0)  # rising towards the scored step
    with pytest.raises(ConfigError, match="wrt"):
        gradient_norms_through_time(model, batch.input_ids, batch.targets, wrt="weights")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="score no position"):
        gradient_norms_through_time(model, batch.input_ids, torch.full_like(batch.targets, -100))
