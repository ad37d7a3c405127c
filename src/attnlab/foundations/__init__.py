"""The foundations lab: the maths under a transformer, in readable NumPy.

The first hour of the workshop, one module a topic:

- `vectors`: dot product, cosine similarity, Euclidean distance, nearest neighbours.
- `regression`: least squares (normal equations and lstsq), ridge, lasso and
  elastic net (coordinate descent), regularisation paths; scikit-learn's objectives.
- `activations`: ReLU, GELU (exact and tanh), tanh, sigmoid, SiLU and derivatives.
- `optimizers`: GD -> SGD -> momentum -> Adam -> AdamW as short update rules, run
  on loss surfaces with the NumPy optimizers of `attnlab.scratch.optim`; the
  weight-decay example.
- `surfaces`: 2-D loss landscapes (ill-conditioned quadratic, Rosenbrock, least squares).
- `figures`: the lab's figures (`attnlab figures foundations --out DIR`).

Submodules are imported on first use, so `import attnlab.foundations` stays cheap.
"""

from __future__ import annotations

import importlib

__all__ = ["activations", "figures", "optimizers", "regression", "surfaces", "vectors"]

# The lab's figures, in order (file stems), and their default resolution. Kept here,
# free of imports, so that the CLI can list them without loading NumPy or matplotlib;
# `figures.FIGURES` maps each name to the function that draws it.
FIGURE_NAMES = (
    "vectors_neighbors",
    "regularization_paths",
    "activations",
    "optimizer_paths",
    "optimizer_loss_curves",
    "minibatch_sgd",
    "lr_schedule",
)
DEFAULT_DPI = 150


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
