"""Positional encodings: hand values, the Fourier variant, learned tables, RoPE's relative property."""

import math

import torch
from torch.testing import assert_close

from attnlab.nn.positional import (
    FixedPositionalEncoding,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    fourier_table,
    position_modules,
    rotate_half,
    sinusoidal_table,
)


def test_sinusoidal_by_hand():
    pe = sinusoidal_table(3, 4)
    # position 0: sin(0) = 0 on even channels, cos(0) = 1 on odd ones
    assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    # position 1: channel pair 0 has frequency 1, pair 1 has 1/10000^(2/4) = 1/100
    assert_close(pe[1], torch.tensor([math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)]))


def test_fourier_basis_angles_are_2pi_k_over_d():
    d = 8
    pe = fourier_table(10, d)
    p, k = 3, 2  # channels 2(k-1), 2(k-1)+1
    angle = 2 * math.pi * k * p / d
    assert_close(pe[p, 2], torch.tensor(math.sin(angle)))
    assert_close(pe[p, 3], torch.tensor(math.cos(angle)))
    # it repeats after `period` = d positions
    longer = fourier_table(20, d)
    assert_close(longer[1], longer[1 + d], atol=1e-5, rtol=1e-5)


def test_fourier_with_period_equal_to_positions_is_orthogonal_for_distinct_frequencies():
    T, d = 16, 8
    pe = fourier_table(T, d, period=T)
    gram = pe.T @ pe  # (d, d): channels are orthogonal vectors over positions
    off = gram - torch.diag(torch.diag(gram))
    assert off.abs().max() < 1e-4


def test_sinusoidal_dot_product_depends_on_offset_only():
    pe = sinusoidal_table(64, 32)
    d1 = pe[10] @ pe[15]
    d2 = pe[30] @ pe[35]
    assert_close(d1, d2, atol=1e-4, rtol=1e-4)


def test_rotate_half():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert rotate_half(x).tolist() == [-3.0, -4.0, 1.0, 2.0]


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    rope = RotaryEmbedding(16)
    q = torch.randn(1, 1, 1, 16)
    k = torch.randn(1, 1, 1, 16)

    def score(m, n):
        qm = rope(q, torch.tensor([m]))
        kn = rope(k, torch.tensor([n]))
        return (qm * kn).sum()

    assert_close(score(5, 2), score(13, 10), atol=1e-5, rtol=1e-5)
    assert_close(score(0, 0), score(40, 40), atol=1e-5, rtol=1e-5)
    assert_close(score(0, 0), (q * k).sum(), atol=1e-5, rtol=1e-5)  # no rotation at offset 0
    assert not torch.allclose(score(5, 2), score(5, 4))


def test_rope_preserves_norm():
    torch.manual_seed(1)
    rope = RotaryEmbedding(8)
    x = torch.randn(2, 3, 5, 8)
    y = rope(x, torch.arange(5))
    assert_close(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)


def test_position_modules_builds_what_each_kind_needs():
    table, rotary = position_modules("learned", 16, 8, 4)
    assert isinstance(table, LearnedPositionalEmbedding) and rotary is None and table.weight.shape == (16, 8)
    for kind in ("sinusoidal", "fourier"):
        table, rotary = position_modules(kind, 16, 8, 4)
        assert isinstance(table, FixedPositionalEncoding) and rotary is None
    assert_close(position_modules("sinusoidal", 16, 8, 4)[0].table, sinusoidal_table(16, 8))
    table, rotary = position_modules("rotary", 16, 8, 4, rope_base=500.0)
    assert table is None and isinstance(rotary, RotaryEmbedding) and (rotary.head_dim, rotary.base) == (4, 500.0)
    assert position_modules("none", 16, 8, 4) == (None, None)
