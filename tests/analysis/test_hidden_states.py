"""Hidden-state analysis on constructed inputs whose answers are known, and on real models."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from attnlab.analysis.hidden_states import (
    collect_hidden_states,
    cosine_similarity_matrix,
    effective_rank,
    hidden_state_stats,
    mean_pairwise_cosine,
    token_norms,
)


def test_effective_rank_of_constructed_matrices():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=16)
    rank_one = rng.normal(size=(10, 1)) * direction[None, :]  # every state on one line
    assert_allclose(effective_rank(rank_one), 1.0, atol=1e-9)
    k_orthogonal = np.zeros((6, 16))
    k_orthogonal[np.arange(6), np.arange(6)] = 3.0  # 6 orthogonal directions of equal size
    assert_allclose(effective_rank(k_orthogonal), 6.0, atol=1e-9)
    # two directions with singular values 3 and 1: p = (3/4, 1/4), erank = exp(H(p)), by hand
    two = np.diag([3.0, 1.0])
    p = np.array([0.75, 0.25])
    assert_allclose(effective_rank(two), np.exp(-(p * np.log(p)).sum()))
    assert effective_rank(np.zeros((4, 5))) == 0.0
    # centring removes a shared offset: offset + (zero-mean) rank-1 variation is rank 1 once centred
    offset = np.zeros(16)
    offset[0] = 5.0
    line = np.zeros(16)
    line[1] = 1.0
    shifted = offset[None, :] + np.array([-2.0, -1.0, 1.0, 2.0])[:, None] * line[None, :]
    assert 1.5 < effective_rank(shifted) < 2.0
    assert_allclose(effective_rank(shifted, center=True), 1.0, atol=1e-9)


def test_cosine_similarity_by_hand():
    states = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]])
    sim = cosine_similarity_matrix(states)
    assert_allclose(np.diag(sim), 1.0)
    assert_allclose(sim[0, 1], 0.0)
    assert_allclose(sim[0, 2], -1.0)
    assert_allclose(sim[0, 3], 1 / np.sqrt(2))
    # mean over the ordered pairs i != j of the 3 first states: (0 + -1 + 0) * 2 / 6
    assert_allclose(mean_pairwise_cosine(states[:3]), -1 / 3)
    identical = np.tile(np.array([[1.0, 2.0, 3.0]]), (4, 1))
    assert_allclose(mean_pairwise_cosine(identical), 1.0)


def test_cosine_similarity_matrix_is_the_shared_one():
    """One cosine-similarity matrix in the library: analysis, viz and foundations agree on it (zero rows included)."""
    from attnlab.foundations.vectors import pairwise_cosine_similarity
    from attnlab.viz.embeddings import cosine_matrix

    states = np.random.default_rng(0).normal(size=(5, 3))
    states[2] = 0.0  # no direction: similarity 0 with everything, never NaN
    sim = cosine_similarity_matrix(torch.tensor(states))
    assert_allclose(sim, pairwise_cosine_similarity(states, states), rtol=1e-12, atol=1e-15)
    assert_allclose(sim, cosine_matrix(states), rtol=1e-12, atol=1e-15)
    assert_allclose(sim[2], 0.0)
    assert_allclose(sim[:, 2], 0.0)
    assert sim.min() >= -1.0 and sim.max() <= 1.0
    with pytest.raises(ValueError, match="states must be"):
        cosine_similarity_matrix(states[None])


def test_padding_is_excluded_everywhere():
    hidden = np.zeros((2, 4, 3))
    hidden[0, :, 0] = [3.0, 4.0, 0.0, 0.0]
    hidden[0, :, 1] = [4.0, 3.0, 0.0, 0.0]
    hidden[1, :, 2] = [1.0, 2.0, 2.0, 99.0]  # position 3 is padding
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]])
    assert_allclose(token_norms(hidden, mask), [5.0, 5.0, 1.0, 2.0, 2.0])
    stats = hidden_state_stats([hidden, 2 * hidden], mask)
    assert_allclose(stats.norm_mean, [3.0, 6.0])
    assert_allclose(stats.norm_std, [np.std([5, 5, 1, 2, 2]), 2 * np.std([5, 5, 1, 2, 2])])
    real = hidden[mask.astype(bool)]
    assert_allclose(stats.mean[0], real.mean())
    assert_allclose(stats.variance[0], real.var())
    # sequence 0: cos((3,4),(4,3)) = 24/25; sequence 1: all parallel -> 1; 2 + 6 ordered pairs
    assert_allclose(stats.mean_cosine[0], (2 * 24 / 25 + 6 * 1.0) / 8)
    assert stats.num_tokens == 5 and stats.width == 3 and stats.num_layers == 1


def test_stats_accept_tensors_and_match_numpy():
    torch.manual_seed(0)
    hidden = [torch.randn(2, 5, 8) for _ in range(3)]
    from_torch = hidden_state_stats(hidden)
    from_numpy = hidden_state_stats([h.numpy() for h in hidden])
    for name in ("norm_mean", "norm_std", "mean", "variance", "mean_cosine", "effective_rank"):
        assert_allclose(getattr(from_torch, name), getattr(from_numpy, name), rtol=1e-6)
    assert_allclose(from_torch.norm_mean[1], hidden[1].reshape(-1, 8).norm(dim=-1).mean().item(), rtol=1e-6)
    assert set(from_torch.to_dict()) >= {"norm_mean", "effective_rank", "num_tokens"}
    assert len(from_torch.table().splitlines()) == 4


def test_on_an_encoder_and_a_gpt():
    from attnlab.models.encoder import Encoder, EncoderConfig
    from attnlab.models.gpt import GPT, GPTConfig

    torch.manual_seed(1)
    encoder = Encoder(EncoderConfig.from_name("mini", vocab_size=20))
    ids = torch.randint(0, 20, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    states = collect_hidden_states(encoder, ids, mask)
    stats = hidden_state_stats(states, mask)
    assert stats.num_layers == 2 and stats.num_tokens == 15
    # post-norm encoder: every state is LayerNorm-ed (unit gains, zero biases), so its norm is ~sqrt(C)
    assert_allclose(stats.norm_mean, np.sqrt(32), rtol=1e-3)
    gpt = GPT(GPTConfig.from_name("nano", vocab_size=20))
    gstats = hidden_state_stats(collect_hidden_states(gpt, ids[0]))
    assert len(gstats.norm_mean) == 3 and np.all(gstats.effective_rank >= 1.0)


def test_figures_are_written(tmp_path):
    from attnlab.viz.hidden_states import plot_hidden_state_stats, plot_token_similarity

    torch.manual_seed(2)
    hidden = [torch.randn(1, 6, 8) * (i + 1) for i in range(4)]
    stats = hidden_state_stats(hidden)
    path = plot_hidden_state_stats(
        {"trained": stats, "random": hidden_state_stats(hidden[::-1])}, tmp_path / "stats.png"
    )
    assert path.is_file() and path.stat().st_size > 1000
    path = plot_token_similarity(hidden, list("abcdef"), tmp_path / "sim.png", layers=[0, 3])
    assert path.is_file() and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="out of range"):
        plot_token_similarity(hidden, list("abcdef"), tmp_path / "bad.png", layers=[9])
