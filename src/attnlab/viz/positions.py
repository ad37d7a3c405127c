"""Positional encodings as pictures: the sinusoidal and Fourier tables, similarity vs
offset, and the relative-position property of rotary embeddings (RoPE).

* Sinusoidal (Vaswani et al., 2017, sec. 3.5) and the regular Fourier basis are the
  tables of `attnlab.nn.positional` (`sinusoidal_table`, `fourier_table`).
* Offset: the cosine similarity of PE[p] and PE[p + k] depends on the offset k only
  (sum of cos(w_i k) over the frequencies), whatever the reference position p; the
  Fourier basis repeats after its period, the geometric frequencies do not.
* RoPE (Su et al., 2021): rotating q at position m and k at position n gives a score
  <R_m q, R_n k> = <q, R_(n-m) k> that depends on n - m only. Adding an encoding
  instead, (q + PE[m]) . (k + PE[n]), depends on m and n separately.

Each `*_data` function returns the numbers a panel draws (tests compare them with a
direct computation; the app can draw them itself).

Notation: T positions, C channels, D head size, K offsets, P reference positions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from attnlab.errors import ConfigError
from attnlab.viz._mpl import BLACK, DEFAULT_DPI, PALETTE, finish, new_figure, styled

PANELS = ("all", "sinusoidal", "fourier", "offset", "rope")


def _check_sizes(num_positions: int, dim: int) -> None:
    if num_positions < 2:
        raise ConfigError(f"need at least 2 positions, got {num_positions}")
    if dim < 2 or dim % 2:
        raise ConfigError(f"the encoding dimension must be even and at least 2 (sin/cos pairs), got {dim}")
    if num_positions * dim > 4_000_000:
        raise ConfigError(f"{num_positions} positions x {dim} channels is too large to draw; use fewer")


def encoding_table(kind: str, num_positions: int, dim: int, period: float | None = None) -> np.ndarray:
    """The (T, C) table of a fixed encoding, from `attnlab.nn.positional`.

    Args:
        kind: "sinusoidal" or "fourier".
        num_positions: T.
        dim: C (even).
        period: Fourier only: positions per turn of the lowest frequency (default C).
    """
    from attnlab.nn.positional import fourier_table, sinusoidal_table

    _check_sizes(num_positions, dim)
    if kind == "sinusoidal":
        return sinusoidal_table(num_positions, dim).numpy()
    if kind == "fourier":
        return fourier_table(num_positions, dim, period).numpy()
    raise ConfigError(f"unknown encoding {kind!r}; choose sinusoidal or fourier")


def similarity_by_offset(table: np.ndarray, reference_positions: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cosine similarity of each reference row with every row, indexed by offset.

    Args:
        table: (T, C) encodings.
        reference_positions: P positions p.
    Returns:
        For each p: (offsets k = q - p for q = 0..T-1, cos(PE[p], PE[q])), both (T,).
    """
    table = np.asarray(table, dtype=np.float64)
    T = table.shape[0]
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    out = []
    for p in reference_positions:
        if not 0 <= p < T:
            raise ConfigError(f"reference position {p} is outside 0..{T - 1}")
        out.append((np.arange(T) - p, unit @ unit[p]))
    return out


def rope_scores_by_offset(
    head_dim: int = 64,
    query_positions: Sequence[int] = (40, 100, 200),
    max_offset: int = 40,
    *,
    base: float = 10000.0,
    seed: int = 0,
    same_vector: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores <RoPE(q, m), RoPE(k, m + offset)> for several query positions m.

    Uses `attnlab.nn.positional.RotaryEmbedding`. With `same_vector`, k = q (the score
    is largest at offset 0 and falls with distance), else an independent random k.

    Args:
        head_dim: D (even).
        query_positions: P absolute query positions m (each >= max_offset, so keys stay >= 0).
        max_offset: offsets run from -max_offset to +max_offset.
        base: RoPE frequency base.
        seed: seed of the random q (and k).
        same_vector: use k = q.
    Returns:
        (offsets (K,), scores (P, K)) with K = 2 * max_offset + 1; scores are divided by sqrt(D)
        as attention does.
    """
    import torch

    from attnlab.nn.positional import RotaryEmbedding

    q, k = _random_pair(head_dim, seed, same_vector)
    offsets = np.arange(-max_offset, max_offset + 1)
    if min(query_positions) < max_offset:
        raise ConfigError(
            f"query positions must be >= max_offset ({max_offset}) so that key positions are not negative"
        )
    rope = RotaryEmbedding(head_dim, base)
    qt = torch.from_numpy(q)[None, None, None, :]  # (1, 1, 1, D)
    kt = torch.from_numpy(k)[None, None, None, :]
    scores = np.empty((len(query_positions), len(offsets)))
    for row, m in enumerate(query_positions):
        key_pos = torch.as_tensor(m + offsets, dtype=torch.long)  # (K,)
        q_rot = rope(qt, torch.tensor([m]))[0, 0]  # (1, D)
        k_rot = rope(kt.expand(1, 1, len(offsets), head_dim), key_pos)[0, 0]  # (K, D)
        scores[row] = (k_rot @ q_rot[0]).numpy() / np.sqrt(head_dim)
    return offsets, scores


def additive_scores_by_offset(
    head_dim: int = 64,
    query_positions: Sequence[int] = (40, 100, 200),
    max_offset: int = 40,
    *,
    seed: int = 0,
    same_vector: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The contrast to RoPE: scores (q + PE[m]) . (k + PE[m + offset]) / sqrt(D) with sinusoidal PE.

    Same arguments and return shapes as `rope_scores_by_offset`.
    """
    q, k = _random_pair(head_dim, seed, same_vector)
    offsets = np.arange(-max_offset, max_offset + 1)
    table = encoding_table("sinusoidal", max(query_positions) + max_offset + 1, head_dim).astype(np.float64)
    scores = np.empty((len(query_positions), len(offsets)))
    for row, m in enumerate(query_positions):
        scores[row] = ((k[None, :] + table[m + offsets]) @ (q + table[m])) / np.sqrt(head_dim)
    return offsets, scores


def _random_pair(head_dim: int, seed: int, same_vector: bool) -> tuple[np.ndarray, np.ndarray]:
    if head_dim < 2 or head_dim % 2:
        raise ConfigError(f"rotary embeddings need an even head size, got {head_dim}")
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(head_dim).astype(np.float32)
    k = q.copy() if same_vector else rng.standard_normal(head_dim).astype(np.float32)
    return q, k


# --- panels -------------------------------------------------------------------------


def _draw_table(fig, ax, table: np.ndarray, title: str) -> None:
    im = ax.imshow(table, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.grid(False)
    ax.set_xlabel("channel (even: sin, odd: cos)")
    ax.set_ylabel("position")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.85, label="value")


def _draw_offset(ax, num_positions: int, dim: int, period: float | None) -> None:
    refs = [0, num_positions // 2, num_positions - 1]
    for kind, color, label in (("sinusoidal", PALETTE[0], "sinusoidal"), ("fourier", PALETTE[1], "Fourier")):
        curves = similarity_by_offset(encoding_table(kind, num_positions, dim, period), refs)
        for n, (offsets, sim) in enumerate(curves):
            # the curves of the three reference positions lie on top of each other
            ax.plot(
                offsets,
                sim,
                color=color,
                lw=[4.5, 2.2, 1.0][n],
                alpha=[0.35, 0.8, 1.0][n],
                ls=["-", "--", ":"][n],
                label=f"{label}, p = {refs[n]}",
            )
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xlabel("offset k (position q - p)")
    ax.set_ylabel("cosine similarity of PE[p], PE[p + k]")
    ax.set_title("Similarity depends on the offset only")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=11.5, ncol=2, frameon=False)


def _draw_rope(ax, head_dim: int, base: float) -> None:
    positions = (40, 100, 200)
    offsets, rope = rope_scores_by_offset(head_dim, positions, 40, base=base)
    _, added = additive_scores_by_offset(head_dim, positions, 40)
    for n, m in enumerate(positions):
        ax.plot(offsets, added[n], color="0.55", lw=1.3, ls=["-", "--", ":"][n], label=f"added sinusoidal PE, m = {m}")
    for n, m in enumerate(positions):
        ax.plot(
            offsets,
            rope[n],
            color=PALETTE[2] if n == 0 else BLACK,
            lw=[5.0, 2.0, 1.0][n],
            alpha=[0.45, 0.9, 1.0][n],
            ls=["-", "--", ":"][n],
            label=f"RoPE, query at m = {m}",
        )
    ax.set_xlabel("offset n - m (key position - query position)")
    ax.set_ylabel("attention score q.k / sqrt(D)")
    ax.set_title("RoPE: the score depends on n - m only")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=11.5, ncol=2, frameon=False)


@styled
def plot_positions(
    out: str | os.PathLike | None = None,
    *,
    panel: str = "all",
    num_positions: int = 128,
    dim: int = 64,
    period: float | None = None,
    head_dim: int = 64,
    rope_base: float = 10000.0,
    dpi: int = DEFAULT_DPI,
):
    """Positional-encoding figure: all four panels, or one.

    Args:
        out: file to write (.png, .svg, .pdf); None returns the figure.
        panel: "all", "sinusoidal", "fourier", "offset" (similarity vs offset) or "rope".
        num_positions: T rows of the tables.
        dim: C channels of the tables (even).
        period: Fourier period (default C).
        head_dim: D for the RoPE panel.
        rope_base: RoPE frequency base.
        dpi: PNG resolution.
    Returns:
        The figure when `out` is None, else the written path.
    """
    if panel not in PANELS:
        raise ConfigError(f"unknown panel {panel!r}; choose one of {', '.join(PANELS)}")
    _check_sizes(num_positions, dim)
    if panel == "all":
        fig = new_figure(16, 12)
        (a, b), (c, d) = fig.subplots(2, 2)
        _draw_table(
            fig, a, encoding_table("sinusoidal", num_positions, dim), f"Sinusoidal encoding ({num_positions} x {dim})"
        )
        _draw_table(
            fig,
            b,
            encoding_table("fourier", num_positions, dim, period),
            f"Fourier basis (period {period or dim:g} positions)",
        )
        _draw_offset(c, num_positions, dim, period)
        _draw_rope(d, head_dim, rope_base)
        fig.suptitle("Positional encodings")
        return finish(fig, out, dpi)
    fig = new_figure(9, 6.5)
    ax = fig.subplots()
    if panel == "sinusoidal":
        _draw_table(
            fig, ax, encoding_table("sinusoidal", num_positions, dim), f"Sinusoidal encoding ({num_positions} x {dim})"
        )
    elif panel == "fourier":
        _draw_table(
            fig,
            ax,
            encoding_table("fourier", num_positions, dim, period),
            f"Fourier basis (period {period or dim:g} positions)",
        )
    elif panel == "offset":
        _draw_offset(ax, num_positions, dim, period)
    else:
        _draw_rope(ax, head_dim, rope_base)
    return finish(fig, out, dpi)


__all__ = [
    "PANELS",
    "additive_scores_by_offset",
    "encoding_table",
    "plot_positions",
    "rope_scores_by_offset",
    "similarity_by_offset",
]
