"""The lab notebooks' exercises: checks with targeted hints, reference solutions, notebook helpers.

A notebook imports the three parts it uses:

    from attnlab.exercises import check, labs, solutions

    @labs.exercise
    def attention(q, k, v, mask=None):
        raise NotImplementedError  # the learner's code here

    check.attention(attention)

* `check`: one check per exercise (`check.softmax`, `check.attention`, ...), gathered from
  one module per exercise group: `basics` (softmax, cosine similarity), `self_attention`
  (causal mask, attention), `encoder_block` (layer norm, multi-head split and merge,
  positional encoding), `losses` (cross-entropy), `pooling` (mean pooling) and `points`
  (farthest-point sampling), `interp` and `scaling` (measurement checks of labs 8 and 7), on the shared machinery of `_core`.
* `solutions`: the reference solutions in plain NumPy (for instructors; the checks compare
  with them, and instructor mode, `ATTNLAB_SOLUTIONS=1`, swaps them in).
* `labs`: fast mode, instructor mode, run folders and inline HTML for the notebooks.

The checks are also importable from the package itself (`attnlab.exercises.softmax` is
`check.softmax`). The library never imports this package; it needs NumPy, and PyTorch or
IPython only when a learner's function or a notebook helper uses them.
"""

from __future__ import annotations

from attnlab.exercises import check, labs, solutions
from attnlab.exercises.check import (
    EXERCISES,
    PREDICTIONS,
    CheckResult,
    ablation_prediction,
    attention,
    causal_mask,
    cosine_similarity,
    cross_entropy,
    farthest_point_sample,
    fit_power_law,
    gain_slope,
    layer_norm,
    mean_pooling,
    mistake_function,
    mistakes,
    multi_head_merge,
    multi_head_split,
    positional_encoding,
    predict_loss,
    previous_token_scores,
    softmax,
)

__all__ = [
    "EXERCISES",
    "PREDICTIONS",
    "CheckResult",
    "ablation_prediction",
    "attention",
    "causal_mask",
    "check",
    "cosine_similarity",
    "cross_entropy",
    "farthest_point_sample",
    "fit_power_law",
    "gain_slope",
    "labs",
    "layer_norm",
    "mean_pooling",
    "mistake_function",
    "mistakes",
    "multi_head_merge",
    "multi_head_split",
    "positional_encoding",
    "predict_loss",
    "previous_token_scores",
    "softmax",
    "solutions",
]
