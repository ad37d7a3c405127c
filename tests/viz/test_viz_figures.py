"""The figure functions: files written, labels drawn, and the numbers behind each figure
checked against a direct computation (no MiniLM needed here)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.errors import ConfigError, DataError
from attnlab.viz import attention as VA
from attnlab.viz import curves as VC
from attnlab.viz import embeddings as VE
from attnlab.viz import positions as VP
from attnlab.viz._mpl import save_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_width: int = 200) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_width and height >= 100


def assert_svg(path: Path) -> None:
    text = Path(path).read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text


def panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible()]


@pytest.fixture(scope="module")
def attentions():
    """Causal softmax weights of 3 layers x 2 heads over 5 tokens, HF layout (B=1)."""
    g = torch.Generator().manual_seed(0)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    return [
        torch.softmax(torch.randn(1, 2, 5, 5, generator=g).masked_fill(~causal, float("-inf")), -1) for _ in range(3)
    ]


TOKENS = ["the", " ", "cat", "\n", "sat"]


# --- attention -------------------------------------------------------------------------


def test_attention_head_writes_png_and_svg_with_token_labels(attentions, tmp_path):
    w = attentions[1][0, 1]
    fig = VA.plot_attention_head(w, TOKENS, title="layer 1, head 1")
    ax = panels(fig)[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["the", "␣", "cat", "\\n", "sat"]
    assert ax.get_title() == "layer 1, head 1" and ax.get_xlabel() and ax.get_ylabel()
    np.testing.assert_allclose(ax.images[0].get_array(), w.numpy())  # the heatmap is the head's weights
    assert_png(VA.plot_attention_head(w, TOKENS, tmp_path / "head.png"))
    assert_svg(VA.plot_attention_head(w, TOKENS, tmp_path / "head.svg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.png", "head.svg"]  # no temporary files left


def test_attention_grid_shows_every_layer_and_head(attentions, tmp_path):
    fig = VA.plot_attention_grid(attentions, TOKENS)
    maps = panels(fig)
    assert len(maps) == 3 * 2
    for n, ax in enumerate(maps):
        np.testing.assert_allclose(ax.images[0].get_array(), attentions[n // 2][0, n % 2].numpy())
    assert maps[0].get_title() == "head 0" and maps[0].get_ylabel() == "layer 0"
    assert_png(VA.plot_attention_grid(attentions, TOKENS, tmp_path / "grid.png"))


def test_attention_mean_over_heads(attentions, tmp_path):
    stacked = torch.stack([a[0] for a in attentions]).numpy()  # (L, H, T, T)
    np.testing.assert_allclose(VA.mean_over_heads(attentions), stacked.mean(axis=1), rtol=1e-6)
    fig = VA.plot_attention_mean(attentions, TOKENS)
    assert len(panels(fig)) == 3
    for layer, ax in enumerate(panels(fig)):
        np.testing.assert_allclose(ax.images[0].get_array(), stacked[layer].mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(ax.images[0].get_array().sum(axis=1), 1.0, rtol=1e-5)  # rows still sum to 1
    one = VA.plot_attention_mean(attentions, TOKENS, layers=[-1])
    np.testing.assert_allclose(panels(one)[0].images[0].get_array(), stacked[2].mean(axis=0), rtol=1e-6)
    assert_png(VA.plot_attention_mean(attentions, TOKENS, tmp_path / "mean.png"))


def test_attention_bad_inputs(attentions):
    with pytest.raises(ConfigError, match="one label per token"):
        VA.plot_attention_head(attentions[0][0, 0], TOKENS[:3])
    with pytest.raises(ConfigError, match=r"valid values are 0\.\.2"):
        VA.plot_attention_mean(attentions, TOKENS, layers=[3])
    assert VA.check_index(-1, 4, "head") == 3
    with pytest.raises(ConfigError, match=r"this model has 2 heads, valid values are 0\.\.1"):
        VA.check_index(2, 2, "head")


def test_save_figure_formats_and_errors(attentions, tmp_path):
    fig = VA.plot_attention_head(attentions[0][0, 0], TOKENS)
    assert save_figure(fig, tmp_path / "noext") == tmp_path / "noext.png"  # no suffix: PNG
    assert_png(tmp_path / "noext.png")
    assert (save_figure(fig, tmp_path / "f.pdf")).read_bytes()[:4] == b"%PDF"
    with pytest.raises(ConfigError, match=r"\.png, \.svg, \.pdf"):
        save_figure(fig, tmp_path / "f.jpg")
    with pytest.raises(ConfigError, match="dpi"):
        save_figure(fig, tmp_path / "f.png", dpi=5)
    with pytest.raises(ConfigError, match="folder"):
        save_figure(fig, tmp_path)


# --- positions -------------------------------------------------------------------------


def _rotation(position: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """RoPE as an explicit (D, D) matrix: channel i and i + D/2 rotate by position * base^(-2i/D)."""
    R = np.zeros((dim, dim))
    half = dim // 2
    for i in range(half):
        angle = position * base ** (-2 * i / dim)
        c, s = math.cos(angle), math.sin(angle)
        R[i, i], R[i, i + half] = c, -s
        R[i + half, i], R[i + half, i + half] = s, c
    return R


@pytest.mark.parametrize("same_vector", [True, False])
def test_rope_panel_numbers_equal_the_direct_computation(same_vector):
    positions, max_offset, dim = (8, 20, 33), 8, 16
    offsets, scores = VP.rope_scores_by_offset(dim, positions, max_offset, seed=3, same_vector=same_vector)
    rng = np.random.default_rng(3)
    q = rng.standard_normal(dim).astype(np.float32).astype(np.float64)
    k = q.copy() if same_vector else rng.standard_normal(dim).astype(np.float32).astype(np.float64)
    direct = np.array(
        [[(_rotation(m, dim) @ q) @ (_rotation(m + o, dim) @ k) / math.sqrt(dim) for o in offsets] for m in positions]
    )
    np.testing.assert_array_equal(offsets, np.arange(-max_offset, max_offset + 1))
    np.testing.assert_allclose(scores, direct, rtol=1e-4, atol=1e-4)
    # the relative-position property: every query position gives the same curve
    np.testing.assert_allclose(scores, np.broadcast_to(scores[0], scores.shape), rtol=1e-4, atol=1e-4)


def test_added_encoding_depends_on_absolute_position():
    offsets, added = VP.additive_scores_by_offset(16, (8, 20, 33), 8, seed=3)
    pe = VP.encoding_table("sinusoidal", 42, 16).astype(np.float64)
    q = np.random.default_rng(3).standard_normal(16).astype(np.float32).astype(np.float64)
    direct = np.array([[(q + pe[m]) @ (q + pe[m + o]) / 4.0 for o in offsets] for m in (8, 20, 33)])
    np.testing.assert_allclose(added, direct, rtol=1e-5)
    assert np.abs(added[0] - added[1]).max() > 0.1  # unlike RoPE, the curves differ


def test_similarity_by_offset_depends_only_on_the_offset():
    from attnlab.nn.positional import sinusoidal_table

    table = sinusoidal_table(40, 16)
    curves = VP.similarity_by_offset(table.numpy(), [0, 10, 39])
    direct = torch.nn.functional.cosine_similarity(table[:, None, :], table[None, :, :], dim=-1).numpy()  # (T, T)
    for (offsets, values), p in zip(curves, [0, 10, 39]):
        np.testing.assert_array_equal(offsets, np.arange(40) - p)
        np.testing.assert_allclose(values, direct[p], atol=1e-6)
    # shift invariance: offset 1..29 from position 10 equals the same offsets from position 0
    np.testing.assert_allclose(curves[1][1][11:40], curves[0][1][1:30], atol=1e-5)
    fourier = VP.encoding_table("fourier", 40, 16)  # period 16: position 16 repeats position 0
    np.testing.assert_allclose(fourier[16], fourier[0], atol=1e-5)


@pytest.mark.parametrize("panel", VP.PANELS)
def test_positions_figure_every_panel(panel, tmp_path):
    fig = VP.plot_positions(panel=panel, num_positions=48, dim=16, head_dim=16)
    for ax in panels(fig):
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(panels(fig)) == (4 if panel == "all" else 1)
    if panel in ("all", "rope"):
        assert_png(save_figure(fig, tmp_path / f"{panel}.png", dpi=60), min_width=150)


def test_positions_bad_inputs():
    with pytest.raises(ConfigError, match="even"):
        VP.plot_positions(dim=15)
    with pytest.raises(ConfigError, match="unknown panel"):
        VP.plot_positions(panel="spiral")
    with pytest.raises(ConfigError, match="at least 2 positions"):
        VP.encoding_table("sinusoidal", 1, 8)


# --- random vectors ----------------------------------------------------------------------


def test_random_cosines_shrink_like_one_over_sqrt_d():
    cos = VE.random_cosines((4, 64, 1024), num_pairs=4000, seed=1)
    for d, values in cos.items():
        assert values.shape == (4000,) and np.all(np.abs(values) <= 1 + 1e-12)
        # for Gaussian vectors E[cos] = 0 and Var[cos] = 1/d exactly
        assert abs(values.mean()) < 4 / math.sqrt(d * 4000)
        assert values.std() == pytest.approx(1 / math.sqrt(d), rel=0.06)


def test_random_projection_keeps_distances_better_with_more_dimensions():
    ratios = VE.random_projection_distortion((4, 64, 512), num_points=20, source_dim=1024, seed=0)
    spreads = [np.std(r) for r in ratios.values()]
    assert spreads[0] > spreads[1] > spreads[2]
    assert spreads[2] == pytest.approx(1 / math.sqrt(2 * 512), rel=0.35)  # chi distribution with k dof, scaled
    assert abs(np.mean(ratios[512]) - 1) < 0.02


def test_random_cosines_figure(tmp_path):
    fig = VE.plot_random_cosines((2, 16, 256), num_pairs=300, projection_dims=(4, 32))
    assert len(panels(fig)) == 3
    assert_svg(save_figure(fig, tmp_path / "jl.svg"))
    with pytest.raises(ConfigError, match="between 2 and 100000"):
        VE.random_cosines((1, 8))


def test_similarity_matrix_shows_the_given_numbers(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, 6))
    sim = VE.cosine_matrix(vectors)
    reference = torch.nn.functional.cosine_similarity(
        torch.tensor(vectors)[:, None], torch.tensor(vectors)[None], dim=-1
    )
    np.testing.assert_allclose(sim, reference.numpy(), rtol=1e-12)
    fig = VE.plot_similarity_matrix(sim, ["a", "b", "c", "a rather long label"])
    ax = panels(fig)[0]
    np.testing.assert_allclose(ax.images[0].get_array(), sim)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["#1", "#2", "#3", "#4"]  # long labels: numbered columns
    assert_png(VE.plot_similarity_matrix(sim, list("abcd"), tmp_path / "sim.png"))
    with pytest.raises(ConfigError, match="labels"):
        VE.plot_similarity_matrix(sim, ["a", "b"])


# --- curves and activations -----------------------------------------------------------------


def test_loss_curves_of_several_runs(run_dirs, tmp_path):
    fig = VC.plot_runs(run_dirs)
    ax = panels(fig)[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"run_a: train", "run_a: validation", "run_b: train", "run_b: validation"}
    steps = np.arange(1, 21)
    np.testing.assert_allclose(lines["run_b: train"].get_ydata(), 0.8 * (1 + 3 / steps))
    np.testing.assert_allclose(lines["run_a: validation"].get_xdata(), [5, 10, 15, 20])
    assert_png(VC.plot_runs(run_dirs, tmp_path / "loss.png", labels=["A", "B"], log_y=True, x="tokens"))
    lr = VC.plot_runs(run_dirs[:1], metric="lr", x="time")
    np.testing.assert_allclose(panels(lr)[0].get_lines()[0].get_xdata(), 0.1 * steps)


def test_curves_bad_inputs(run_dirs, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        VC.read_runs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no metrics.jsonl records"):
        VC.read_runs([tmp_path / "empty"])
    with pytest.raises(ConfigError, match="one label per run"):
        VC.read_runs(run_dirs, labels=["only one"])
    with pytest.raises(DataError, match="logged metrics: .*grad_norm"):
        VC.plot_runs(run_dirs, metric="val_accuracy")
    with pytest.raises(ConfigError, match="unknown x axis"):
        VC.plot_runs(run_dirs, x="epoch")


def test_loss_curves_never_fail_a_training_run_without_losses(tmp_path):
    # recipes call plot_loss_curves at the end of training; an early stop must still give a figure
    path = VC.plot_loss_curves({"run": [{"step": 1, "lr": 0.1}]}, tmp_path / "loss.png")
    assert_png(path)


def test_activations_figure_reuses_the_foundations_figure(tmp_path):
    fig = VC.plot_activations(x_range=(-2.0, 2.0))
    first = panels(fig)[0]
    xs = first.get_lines()[0].get_xdata()
    assert xs[0] == -2.0 and xs[-1] == 2.0
    assert_png(VC.plot_activations(tmp_path / "act.png"))
    with pytest.raises(ConfigError, match="low < high"):
        VC.plot_activations(x_range=(1.0, -1.0))
