"""Attention-pattern statistics per head (`attnlab.interp.heads`).

What is promised: each score measures what its name says, checked on hand-built patterns
(forced into a real model through a hook on `hook_pattern`) and on hand-computed values;
the induction probe repeats its first half; `to_rows` is one row per head.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.interp import hooks
from attnlab.interp.heads import HeadScores, head_scores, pattern_scores, repeated_random_tokens
from attnlab.models.gpt import GPT, GPTConfig

V = 30


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.from_name("nano", vocab_size=V)).eval()


def _force(pattern_of_T):
    """A hook that replaces head 0's pattern with a fixed (T, T) pattern (every batch row)."""

    def force(p, name):
        p = p.clone()
        p[:, 0] = pattern_of_T(p.size(-1)).to(p.dtype)
        return p

    return force


def _previous(T: int) -> torch.Tensor:
    p = torch.zeros(T, T)
    p[0, 0] = 1.0
    p[torch.arange(1, T), torch.arange(T - 1)] = 1.0
    return p


def test_repeated_random_tokens_repeat_and_are_seeded():
    ids = repeated_random_tokens(V, 7, 3, seed=1)
    assert ids.shape == (3, 14) and ids.dtype == torch.long
    assert torch.equal(ids[:, :7], ids[:, 7:])
    assert int(ids.min()) >= 0 and int(ids.max()) < V
    assert torch.equal(ids, repeated_random_tokens(V, 7, 3, seed=1))
    g = torch.Generator().manual_seed(1)
    assert torch.equal(repeated_random_tokens(V, 7, 3, seed=99, generator=g), ids)  # the generator wins
    with pytest.raises(ConfigError):
        repeated_random_tokens(V, 0, 3)


def test_forced_previous_token_head_scores_one(model):
    ids = repeated_random_tokens(V, 8, 2)
    with hooks(model, [("blocks.1.attn.hook_pattern", _force(_previous))]):
        scores = head_scores(model, ids)
    assert isinstance(scores, HeadScores)
    assert scores.previous_token.shape == (2, 2)
    assert scores.previous_token[1, 0] == pytest.approx(1.0)
    assert scores.entropy[1, 0] == pytest.approx(0.0, abs=1e-9)
    assert scores.first_token[1, 0] == pytest.approx(1 / 15)  # only query 1 looks at 0
    assert scores.previous_token[1, 1] < 0.9  # the other heads are untouched
    assert scores.top("previous_token")[0][:2] == (1, 0)


def test_forced_induction_head_scores_one(model):
    N = 6
    ids = repeated_random_tokens(V, N, 4, seed=3)

    def induction(T):
        p = _previous(T)
        for t in range(N, T):  # the token after the first occurrence of the query token
            p[t] = 0.0
            p[t, t - N + 1] = 1.0
        return p

    with hooks(model, [("blocks.0.attn.hook_pattern", _force(induction))]):
        scores = head_scores(model, ids)
    assert scores.induction[0, 0] == pytest.approx(1.0)
    assert scores.induction[0, 1] < 0.5


def test_hand_computed_uniform_pattern_and_duplicates():
    T = 5
    causal = torch.tril(torch.ones(T, T))
    uniform = causal / causal.sum(-1, keepdim=True)  # query t: 1/(t+1) on each key
    ids = torch.tensor([[3, 4, 3, 5, 3]])
    # head 0 uniform; head 1 attends to the most recent earlier duplicate, else to itself
    dup = torch.eye(T)
    dup[2] = torch.tensor([1.0, 0, 0, 0, 0])
    dup[4] = torch.tensor([0, 0, 1.0, 0, 0])
    patterns = torch.stack([uniform, dup])[None, None]  # (L=1, B=1, H=2, T, T)
    s = pattern_scores(patterns, ids)
    assert s.first_token[0, 0] == pytest.approx(np.mean([1 / 2, 1 / 3, 1 / 4, 1 / 5]))
    assert s.previous_token[0, 0] == pytest.approx(np.mean([1 / 2, 1 / 3, 1 / 4, 1 / 5]))
    assert s.entropy[0, 0] == pytest.approx(np.mean([math.log(t + 1) for t in range(T)]))
    # duplicates: queries 2 (earlier 0) and 4 (earlier 0, 2)
    assert s.duplicate_token[0, 0] == pytest.approx(np.mean([1 / 3, 2 / 5]))
    assert s.duplicate_token[0, 1] == pytest.approx(1.0)
    assert np.isnan(s.induction).all()  # an odd length is not [x, x]
    rows = s.to_rows()
    assert len(rows) == 2 and set(rows[0]) == {"layer", "head", *s.as_dict()}


def test_head_scores_from_a_cache_match_the_model(model):
    from attnlab.interp import run_with_cache

    ids = repeated_random_tokens(V, 5, 2)
    _, cache = run_with_cache(model, ids)
    a, b = head_scores(model, ids), head_scores(cache, ids)
    for name in a.as_dict():
        np.testing.assert_allclose(a.as_dict()[name], b.as_dict()[name], rtol=1e-6)


def test_bad_patterns_are_config_errors():
    with pytest.raises(ConfigError):
        pattern_scores(torch.zeros(2, 2, 2), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ConfigError):
        pattern_scores(torch.zeros(1, 1, 2, 3, 3), torch.zeros(1, 4, dtype=torch.long))
