"""Embeddings as pictures: cosine-similarity matrices, contextual meaning, nearest
neighbours and analogies on a word-piece table, and why random high-dimensional
vectors are nearly orthogonal (the Johnson-Lindenstrauss picture).

* Sentences: mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings (Reimers &
  Gurevych 2019, Sentence-BERT), so the cosine matrix equals sentence-transformers'.
* Contextual meaning: an input embedding table gives "model" one vector whatever the
  sentence; the encoder's last layer gives "model" in "machine learning model" and
  in "fashion model" different vectors (Peters et al. 2018; Devlin et al. 2019).
* Neighbours and analogies: cosine similarity on MiniLM's input (word-piece)
  embedding table; the analogy a - b + c uses unit vectors and excludes a, b, c
  from the answers (3CosAdd, Mikolov et al. 2013).
* Random vectors: the cosine of two independent Gaussian vectors in d dimensions has
  mean 0 and standard deviation 1/sqrt(d); a random projection to k dimensions keeps
  distances within a factor 1 +- O(1/sqrt(k)) (Johnson & Lindenstrauss 1984).

Functions named like nouns return the numbers; `plot_*` draw them. Functions that
need MiniLM take an optional `encoder` (`attnlab.viz.models.TextEncoder`) and load the
shipped MiniLM when it is None.

Notation: N items, C channels, V vocabulary, d dimension.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from attnlab.errors import ConfigError
from attnlab.foundations.vectors import pairwise_cosine_similarity
from attnlab.viz._mpl import BLUE, DEFAULT_DPI, GREEN, PALETTE, VERMILION, finish, new_figure, styled, tick_fontsize

DEFAULT_SENTENCES = (
    "Computational Modeling and Data Analytics",
    "Academy of Data Science",
    "Statistics and machine learning",
    "Department of History",
    "Medieval French poetry",
)
DEFAULT_CONTEXT_WORD = "model"
DEFAULT_CONTEXTS = (
    "machine learning model",
    "a neural network model",
    "fashion model",
    "a model on the catwalk",
)
DEFAULT_WORDS = ("king", "queen", "man", "woman", "paris", "france", "berlin", "germany")
DEFAULT_ANALOGY = ("king", "man", "woman")  # king - man + woman
DEFAULT_RANDOM_DIMS = (2, 8, 32, 128, 512, 2048)
MAX_ITEMS = 40  # beyond this a labelled matrix is unreadable


def _encoder(encoder: Any | None):
    if encoder is not None:
        return encoder
    from attnlab.viz.models import load_text_encoder

    return load_text_encoder("minilm")


def _check_items(items: Sequence[str], what: str, minimum: int = 2) -> list[str]:
    items = [str(i) for i in items]
    if len(items) < minimum:
        raise ConfigError(f"give at least {minimum} {what}, got {len(items)}")
    if len(items) > MAX_ITEMS:
        raise ConfigError(f"at most {MAX_ITEMS} {what} fit in one figure, got {len(items)}")
    return items


# --- numbers ----------------------------------------------------------------------


def cosine_matrix(vectors: Any, other: Any | None = None) -> np.ndarray:
    """(N, M) cosine similarities between the rows of `vectors` and of `other` (default itself)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    other = vectors if other is None else np.asarray(other, dtype=np.float64)
    return pairwise_cosine_similarity(vectors, other)  # checks its inputs (shapes, NaN) by name


def sentence_similarity(sentences: Sequence[str], encoder: Any | None = None) -> np.ndarray:
    """(N, N) cosine similarity of the sentences' embeddings (MiniLM by default)."""
    sentences = _check_items(sentences, "sentences")
    return cosine_matrix(_encoder(encoder).embed(sentences))


def word_similarity(words: Sequence[str], encoder: Any | None = None) -> np.ndarray:
    """(N, N) cosine similarity of words' rows in the input (word-piece) embedding table."""
    enc = _encoder(encoder)
    words = _check_items(words, "words")
    table = enc.input_embeddings
    return cosine_matrix(table[[enc.token_id(w) for w in words]])


def contextual_similarity(
    word: str, contexts: Sequence[str], encoder: Any | None = None, *, layer: int = -1
) -> dict[str, np.ndarray]:
    """How similar `word` is to itself across contexts, before and after the encoder.

    Args:
        word: a word that occurs in every context.
        contexts: N sentences.
        encoder: a `TextEncoder` (default MiniLM).
        layer: hidden state to compare (-1 = last layer).
    Returns:
        {"static": (N, N) cosine of the word's input-table vectors (mean of its word pieces),
         "contextual": (N, N) cosine of its states at `layer` (mean of its word pieces)}.
    """
    enc = _encoder(encoder)
    contexts = _check_items(contexts, "contexts")
    if not str(word).strip():
        raise ConfigError("the word to follow through the contexts is empty")
    table = enc.input_embeddings
    static, contextual = [], []
    for text in contexts:
        ids = enc.tokenize(text).ids
        start, stop = enc.find_word(ids, word, text)
        static.append(table[ids[start:stop]].mean(axis=0))
        contextual.append(enc.word_vector(text, word, layer=layer))
    return {"static": cosine_matrix(np.stack(static)), "contextual": cosine_matrix(np.stack(contextual))}


def nearest_neighbours(
    vector_or_word: Any,
    k: int = 8,
    encoder: Any | None = None,
    *,
    exclude: Sequence[str] = (),
    words_only: bool = True,
) -> list[tuple[str, float]]:
    """The k word pieces whose input embeddings are most cosine-similar to a word or vector.

    Args:
        vector_or_word: a word (single word piece) or a (C,) vector.
        k: how many neighbours.
        encoder: a `TextEncoder` (default MiniLM).
        exclude: words to leave out (the query word itself is always left out).
        words_only: skip special tokens ([PAD], [unused0] ...) and word-piece
            continuations (##s), which are not words.
    Returns:
        k (word piece, cosine similarity) pairs, most similar first.
    """
    enc = _encoder(encoder)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
        raise ConfigError(f"k (the number of neighbours) must be between 1 and 100, got {k!r}")
    table = enc.input_embeddings
    skip = {enc.token_id(w) for w in exclude}
    if isinstance(vector_or_word, str):
        skip.add(enc.token_id(vector_or_word))
        vector = table[enc.token_id(vector_or_word)]
    else:
        vector = np.asarray(vector_or_word, dtype=np.float64)
    sims = cosine_matrix(vector[None, :], table)[0]  # (V,)
    vocab = enc.vocabulary
    order = np.argsort(-sims, kind="stable")
    out = []
    for i in order:
        if int(i) in skip or (words_only and not _is_word(vocab[i])):
            continue
        out.append((vocab[i], float(sims[i])))
        if len(out) == k:
            break
    return out


def _is_word(piece: str) -> bool:
    """Not a special token ([CLS], <s>, [unused3]) and not a word-piece continuation (##ing)."""
    special = (piece.startswith("[") and piece.endswith("]")) or (piece.startswith("<") and piece.endswith(">"))
    return bool(piece.strip()) and not special and not piece.startswith("##")


def analogy_vector(a: str, b: str, c: str, encoder: Any | None = None) -> np.ndarray:
    """(C,) unit(a) - unit(b) + unit(c) on the input embedding table ("king - man + woman")."""
    enc = _encoder(encoder)
    table = enc.input_embeddings.astype(np.float64)

    def unit(word: str) -> np.ndarray:
        v = table[enc.token_id(word)]
        return v / np.linalg.norm(v)

    return unit(a) - unit(b) + unit(c)


def analogy(a: str, b: str, c: str, k: int = 8, encoder: Any | None = None) -> list[tuple[str, float]]:
    """Answers to "a is to b as ? is to c": nearest neighbours of a - b + c, without a, b, c.

    Example: analogy("king", "man", "woman") -> [("queen", ...), ...] with MiniLM.
    """
    enc = _encoder(encoder)
    return nearest_neighbours(analogy_vector(a, b, c, enc), k, enc, exclude=(a, b, c))


def random_cosines(
    dims: Sequence[int] = DEFAULT_RANDOM_DIMS, num_pairs: int = 2000, seed: int = 0
) -> dict[int, np.ndarray]:
    """Cosine similarity of `num_pairs` pairs of independent standard Gaussian vectors per dimension.

    Returns:
        dimension d -> (num_pairs,) cosines (mean ~0, standard deviation ~1/sqrt(d)).
    """
    dims = _check_dims(dims)
    if not 10 <= num_pairs <= 100_000:
        raise ConfigError(f"num_pairs must be between 10 and 100000, got {num_pairs}")
    rng = np.random.default_rng(seed)
    out = {}
    for d in dims:
        x = rng.standard_normal((num_pairs, d))
        y = rng.standard_normal((num_pairs, d))
        out[d] = np.sum(x * y, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return out


def random_projection_distortion(
    target_dims: Sequence[int] = (4, 16, 64, 256), num_points: int = 40, source_dim: int = 2048, seed: int = 0
) -> dict[int, np.ndarray]:
    """Johnson-Lindenstrauss: distance ratios after a random Gaussian projection.

    `num_points` random points in `source_dim` dimensions are projected with a
    (source_dim, k) matrix of N(0, 1/k) entries; for each pair the ratio
    ||P x - P y|| / ||x - y|| is recorded.

    Returns:
        k -> (num_points * (num_points - 1) / 2,) ratios (spread ~ 1/sqrt(2k) around 1).
    """
    target_dims = _check_dims(target_dims)
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((num_points, source_dim))
    i, j = np.triu_indices(num_points, k=1)
    before = np.linalg.norm(points[i] - points[j], axis=1)
    out = {}
    for k in target_dims:
        projection = rng.standard_normal((source_dim, k)) / np.sqrt(k)
        projected = points @ projection
        out[k] = np.linalg.norm(projected[i] - projected[j], axis=1) / before
    return out


def _check_dims(dims: Sequence[int]) -> list[int]:
    dims = sorted({int(d) for d in dims})
    if not dims or dims[0] < 2 or dims[-1] > 100_000:
        raise ConfigError(f"dimensions must be between 2 and 100000, got {list(dims)}")
    return dims


# --- figures ----------------------------------------------------------------------


def _wrap(label: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


@styled
def plot_similarity_matrix(
    matrix: Any,
    labels: Sequence[str],
    out: str | os.PathLike | None = None,
    *,
    col_labels: Sequence[str] | None = None,
    title: str = "Cosine similarity",
    colorbar_label: str = "cosine similarity",
    annotate: bool | None = None,
    dpi: int = DEFAULT_DPI,
):
    """A labelled (N, M) similarity heatmap with the values written in the cells.

    Args:
        matrix: (N, M) similarities in [-1, 1].
        labels: N row labels (and column labels unless `col_labels`).
        out: file to write; None returns the figure.
        col_labels: M column labels.
        title: figure title.
        colorbar_label: colour-bar caption.
        annotate: write the values (default when N, M <= 12).
        dpi: PNG resolution.
    Returns:
        The figure when `out` is None, else the written path.
    """
    m = np.asarray(matrix, dtype=np.float64)
    rows, cols = _matrix_labels(labels, col_labels)
    if m.shape != (len(rows), len(cols)):
        raise ConfigError(f"a {m.shape} matrix needs {m.shape[0]} row and {m.shape[1]} column labels")
    label_width, side = _matrix_size(m.shape, rows)
    fig = new_figure(side + label_width + 1.6, side + 0.9)
    ax = fig.subplots()
    _draw_matrix(fig, ax, m, rows, cols, annotate, colorbar_label)
    ax.set_title(title)
    return finish(fig, out, dpi)


def _matrix_labels(labels: Sequence[str], col_labels: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Row and column labels; long shared labels become "text (#i)" rows and "#i" columns."""
    rows = [str(t) for t in labels]
    if col_labels is not None:
        return [_wrap(r) for r in rows], [_wrap(str(t), 18) for t in col_labels]
    if max(len(r) for r in rows) <= 12:
        return rows, rows
    return [f"{_wrap(r)} (#{i + 1})" for i, r in enumerate(rows)], [f"#{i + 1}" for i in range(len(rows))]


def _matrix_size(shape: tuple[int, int], rows: Sequence[str]) -> tuple[float, float]:
    """(inches for the row labels, inches for the square matrix)."""
    longest = max(len(line) for r in rows for line in r.split("\n"))
    label_width = min(0.13 * longest, 4.5)
    side = min(max(4.5, 0.8 * max(shape) + 1.5), 18.0)
    return label_width, side


def _draw_matrix(fig, ax, m, rows, cols, annotate, colorbar_label, vmin=None):
    vmin = min(0.0, float(m.min())) if vmin is None else vmin
    im = ax.imshow(m, cmap="magma", vmin=vmin, vmax=1.0, interpolation="nearest")
    ax.grid(False)
    n_rows, n_cols = m.shape
    ax.set_xticks(
        range(n_cols),
        cols,
        rotation=35 if max(map(len, cols)) > 6 else 0,
        ha="right" if max(map(len, cols)) > 6 else "center",
        fontsize=tick_fontsize(n_cols),
    )
    ax.set_yticks(range(n_rows), rows, fontsize=tick_fontsize(n_rows))
    if annotate is None:
        annotate = max(m.shape) <= 12
    if annotate:
        span = 1.0 - vmin
        for i in range(n_rows):
            for j in range(n_cols):
                light = (m[i, j] - vmin) / span > 0.55  # magma is light at the top
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=12 if max(m.shape) <= 6 else 10,
                    color="black" if light else "white",
                )
    fig.colorbar(im, ax=ax, shrink=0.8, label=colorbar_label)


def plot_sentence_similarity(
    sentences: Sequence[str] = DEFAULT_SENTENCES,
    out: str | os.PathLike | None = None,
    *,
    encoder: Any | None = None,
    dpi: int = DEFAULT_DPI,
):
    """Cosine-similarity matrix of sentence embeddings (all-MiniLM-L6-v2 by default)."""
    enc = _encoder(encoder)
    sim = sentence_similarity(sentences, enc)
    return plot_similarity_matrix(
        sim, list(sentences), out, title=f"Sentence similarity ({enc.name}, mean-pooled)", dpi=dpi
    )


def plot_word_similarity(
    words: Sequence[str] = DEFAULT_WORDS,
    out: str | os.PathLike | None = None,
    *,
    encoder: Any | None = None,
    dpi: int = DEFAULT_DPI,
):
    """Cosine-similarity matrix of words' input-embedding vectors (one word piece each)."""
    enc = _encoder(encoder)
    sim = word_similarity(words, enc)
    return plot_similarity_matrix(
        sim, list(words), out, title=f"Word similarity ({enc.name} input embeddings)", dpi=dpi
    )


@styled
def plot_contextual_similarity(
    word: str = DEFAULT_CONTEXT_WORD,
    contexts: Sequence[str] = DEFAULT_CONTEXTS,
    out: str | os.PathLike | None = None,
    *,
    encoder: Any | None = None,
    layer: int = -1,
    dpi: int = DEFAULT_DPI,
):
    """The same word in different sentences: input-table vectors (left) vs contextual states (right).

    Args:
        word: the word to follow (must occur in every context).
        contexts: N sentences.
        out: file to write; None returns the figure.
        encoder: a `TextEncoder` (default MiniLM).
        layer: hidden state to compare (-1 = last layer).
        dpi: PNG resolution.
    """
    enc = _encoder(encoder)
    sims = contextual_similarity(word, contexts, enc, layer=layer)
    rows, cols = _matrix_labels(list(contexts), None)
    if cols == rows:  # short contexts: still number them, the right panel has no row labels
        rows, cols = [f"{r} (#{i + 1})" for i, r in enumerate(rows)], [f"#{i + 1}" for i in range(len(rows))]
    label_width, side = _matrix_size((len(rows), len(rows)), rows)
    fig = new_figure(2 * side + label_width + 3.0, side + 1.6)
    left, right = fig.subplots(1, 2)
    vmin = min(0.0, float(sims["contextual"].min()))
    _draw_matrix(fig, left, sims["static"], rows, cols, None, "cosine similarity", vmin=vmin)
    _draw_matrix(fig, right, sims["contextual"], rows, cols, None, "cosine similarity", vmin=vmin)
    right.set_yticks(range(len(rows)), [f"#{i + 1}" for i in range(len(rows))])
    left.set_title(f"Input embedding of {word!r}:\none vector, whatever the sentence")
    layer_name = "last layer" if layer == -1 else f"layer {layer}"
    right.set_title(f"{enc.name}, {layer_name}:\n{word!r} depends on its context")
    for ax in (left, right):
        ax.set_xlabel("context")
    fig.suptitle(f"Contextual meaning: {word!r} in {len(contexts)} sentences")
    return finish(fig, out, dpi)


@styled
def plot_neighbours(
    words: Sequence[str] = ("king", "paris", "model"),
    out: str | os.PathLike | None = None,
    *,
    k: int = 8,
    encoder: Any | None = None,
    dpi: int = DEFAULT_DPI,
):
    """Nearest word pieces of each word on the input embedding table (one bar panel per word)."""
    enc = _encoder(encoder)
    words = [str(w) for w in words]
    if not 1 <= len(words) <= 6:
        raise ConfigError(f"give 1 to 6 words to find neighbours of, got {len(words)}")
    results = [nearest_neighbours(w, k, enc) for w in words]
    fig = new_figure(4.6 * len(words) + 0.6, 0.45 * k + 2.4)
    axes = np.atleast_1d(fig.subplots(1, len(words)))
    for n, (ax, word, result) in enumerate(zip(axes, words, results)):
        _bars(ax, result, PALETTE[n % len(PALETTE)])
        ax.set_title(f"nearest to {word!r}")
    fig.suptitle(f"Nearest neighbours in {enc.name}'s input embedding table (cosine)")
    return finish(fig, out, dpi)


def _bars(ax, result: list[tuple[str, float]], color: str, highlight: str | None = None) -> None:
    labels = [w for w, _ in result][::-1]
    values = [s for _, s in result][::-1]
    colors = [VERMILION if w == highlight else color for w in labels]
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels, fontsize=13)
    for y, v in enumerate(values):
        ax.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=11)
    ax.set_xlim(0, max(1.0, max(values) + 0.12))
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("word piece")
    ax.grid(axis="y", visible=False)


@styled
def plot_analogy(
    a: str = DEFAULT_ANALOGY[0],
    b: str = DEFAULT_ANALOGY[1],
    c: str = DEFAULT_ANALOGY[2],
    out: str | os.PathLike | None = None,
    *,
    k: int = 8,
    expected: str | None = None,
    encoder: Any | None = None,
    dpi: int = DEFAULT_DPI,
):
    """Analogy arithmetic a - b + c on the input embedding table: the k best answers.

    The bars are the nearest word pieces of unit(a) - unit(b) + unit(c) with a, b and c
    excluded; the note under the title says which word is nearest when they are not
    excluded (usually a itself: the honest caveat of analogy arithmetic).

    Args:
        a, b, c: words (single word pieces), read "a - b + c" (king - man + woman).
        out: file to write; None returns the figure.
        k: answers shown.
        expected: a word to highlight among the answers (default: the best answer).
        encoder: a `TextEncoder` (default MiniLM).
        dpi: PNG resolution.
    """
    enc = _encoder(encoder)
    answers = analogy(a, b, c, k, enc)
    vector = analogy_vector(a, b, c, enc)
    unrestricted = nearest_neighbours(vector, 1, enc)[0]
    fig = new_figure(11, 0.5 * k + 3.0)
    ax = fig.subplots()
    _bars(ax, answers, BLUE, highlight=expected or answers[0][0])
    ax.set_title(
        f"nearest word pieces in {enc.name}'s input embeddings ({a}, {b}, {c} excluded;\n"
        f"without excluding them the nearest is {unrestricted[0]!r} at {unrestricted[1]:.2f})",
        fontsize=13,
        fontweight="normal",
    )
    fig.suptitle(f"Analogy: {a} - {b} + {c} = {answers[0][0]}?")
    return finish(fig, out, dpi)


@styled
def plot_random_cosines(
    dims: Sequence[int] = DEFAULT_RANDOM_DIMS,
    out: str | os.PathLike | None = None,
    *,
    num_pairs: int = 2000,
    projection_dims: Sequence[int] = (4, 16, 64, 256),
    seed: int = 0,
    dpi: int = DEFAULT_DPI,
):
    """Random vectors in high dimensions are nearly orthogonal; random projections keep distances.

    Left: histograms of the cosine between random Gaussian vectors per dimension.
    Middle: their standard deviation vs dimension, against 1/sqrt(d).
    Right: the Johnson-Lindenstrauss view: ratio of distances after a random
    projection from 2048 to k dimensions.
    """
    cos = random_cosines(dims, num_pairs, seed)
    ratios = random_projection_distortion(projection_dims, seed=seed)
    fig = new_figure(19, 6)
    hist, spread, jl = fig.subplots(1, 3)
    bins = np.linspace(-1, 1, 81)
    for n, (d, values) in enumerate(cos.items()):
        hist.hist(
            values, bins=bins, density=True, histtype="step", lw=2.2, color=PALETTE[n % len(PALETTE)], label=f"d = {d}"
        )
    hist.set_xlabel("cosine similarity of two random vectors")
    hist.set_ylabel("density")
    hist.set_title("Random directions are nearly orthogonal")
    hist.legend(loc="upper left")
    d_arr = np.array(list(cos))
    spread.loglog(d_arr, [np.std(v) for v in cos.values()], "o", ms=9, color=BLUE, label="measured std of cosine")
    grid = np.geomspace(d_arr.min(), d_arr.max(), 100)
    spread.loglog(grid, 1 / np.sqrt(grid), color=VERMILION, label="1 / sqrt(d)")
    spread.set_xlabel("dimension d")
    spread.set_ylabel("standard deviation of cosine")
    spread.set_title("The spread shrinks like 1/sqrt(d)")
    spread.legend()
    positions = np.arange(len(ratios))
    parts = jl.violinplot(list(ratios.values()), positions=positions, showextrema=False, widths=0.8)
    for body in parts["bodies"]:
        body.set_facecolor(GREEN)
        body.set_alpha(0.6)
    jl.axhline(1.0, color="0.3", lw=1.2)
    jl.set_xticks(positions, [str(k) for k in ratios])
    jl.set_xlabel("projected dimension k (from 2048)")
    jl.set_ylabel("distance after / distance before")
    jl.set_title("Johnson-Lindenstrauss: distances survive")
    fig.suptitle("High-dimensional geometry: why embeddings have room for many concepts")
    return finish(fig, out, dpi)


__all__ = [
    "DEFAULT_ANALOGY",
    "DEFAULT_CONTEXTS",
    "DEFAULT_CONTEXT_WORD",
    "DEFAULT_RANDOM_DIMS",
    "DEFAULT_SENTENCES",
    "DEFAULT_WORDS",
    "analogy",
    "analogy_vector",
    "contextual_similarity",
    "cosine_matrix",
    "nearest_neighbours",
    "plot_analogy",
    "plot_contextual_similarity",
    "plot_neighbours",
    "plot_random_cosines",
    "plot_sentence_similarity",
    "plot_similarity_matrix",
    "plot_word_similarity",
    "random_cosines",
    "random_projection_distortion",
    "sentence_similarity",
    "word_similarity",
]
