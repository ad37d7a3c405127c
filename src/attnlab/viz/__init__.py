"""Figures: attention maps and the head view, positional encodings, embeddings, curves.

Modules (imported on first use, so `import attnlab.viz` stays cheap):

- `attention`: one head's heatmap, a layers x heads grid, the mean over heads.
- `headview`: an interactive, self-contained HTML "head view" (no network, no CDN).
- `positions`: sinusoidal and Fourier tables, similarity vs offset, RoPE's relative property.
- `embeddings`: cosine-similarity matrices of sentences and words, contextual meaning,
  nearest neighbours and analogies on MiniLM's embedding table, random high-dimensional
  vectors (Johnson-Lindenstrauss).
- `curves`: training curves of one or several runs; activation functions.
- `models`: loading a checkpoint / Hugging Face folder / the shipped MiniLM, and getting
  attention weights, token states and sentence embeddings out of it.

Every `plot_*` function returns a matplotlib `Figure` when `out` is None (a notebook
shows it), else writes `out` (.png, .svg or .pdf) atomically and returns its path.
Figures are built without pyplot, in the workshop's projector style. The CLI is
`attnlab viz attention|alignment|positions|embeddings|activations|curves`.
"""

from __future__ import annotations

import importlib

__all__ = ["attention", "curves", "embeddings", "headview", "models", "positions"]


def __getattr__(name: str):
    # any submodule (including those other labs add here, e.g. vision, hidden_states) on first use
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
