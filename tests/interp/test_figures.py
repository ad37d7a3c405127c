"""attnlab.interp.figures: the numbers written in heatmap cells and what each figure shows.

Every figure is returned (out=None) and read back: cell texts against the values given,
axis labels against the result's labels, colour limits against the data.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from attnlab.interp.figures import cell_format, plot_head_matrix, plot_head_scores, plot_patching
from attnlab.interp.heads import HeadScores
from attnlab.interp.patching import PatchingResult

matplotlib.use("Agg")


def _cell_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


@pytest.mark.parametrize(
    "top, expected",
    [(0.0, ".2f"), (0.9, ".2f"), (0.1, ".2f"), (0.05, ".3f"), (0.003, ".4f"), (0.0123, ".3f"), (4e-5, ".1e")],
)
def test_cell_format_keeps_small_values_readable(top, expected):
    values = np.array([[top, -top / 3], [np.nan, 0.0]])
    assert cell_format(values) == expected
    if top:
        assert float(format(top, expected)) != 0.0  # the largest value never reads 0.00


def test_cell_format_of_nothing_finite():
    assert cell_format(np.array([[np.nan, np.inf]])) == ".2f"


def test_head_matrix_writes_every_value_and_labels_layers_and_heads():
    values = np.array([[0.004, -0.0021, 0.0], [0.0009, 0.0032, -0.004]])  # loss changes of a tiny model
    fig = plot_head_matrix(values, label="loss change")
    texts = _cell_texts(fig)
    assert texts == [format(v, ".4f") for v in values.ravel()]
    assert "0.00" not in texts and "-0.00" not in texts
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["H0", "H1", "H2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["L0", "L1"]
    lo, hi = ax.images[0].get_clim()
    assert lo == pytest.approx(-0.004) and hi == pytest.approx(0.004)  # diverging, centred on 0


def test_patching_figure_shows_positions_as_tokens():
    result = PatchingResult(
        kind="residual",
        values=np.array([[1.0, 0.25, -0.5], [0.0, 0.75, 1.0]]),
        row_name="layer",
        col_name="position",
        row_labels=["L0", "L1"],
        col_labels=["a", " ", "\n"],
        clean_logit_diff=2.0,
        corrupted_logit_diff=-1.0,
    )
    fig = plot_patching(result)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 3 and labels[0] == "a" and labels[2] != "\n"  # a newline is drawn visibly
    assert _cell_texts(fig) == ["1.00", "0.25", "-0.50", "0.00", "0.75", "1.00"]
    assert ax.get_xlabel() == "position" and "residual" in ax.get_title()


def test_head_scores_draws_one_panel_per_score():
    L, H = 2, 3
    rng = np.random.default_rng(0)
    scores = HeadScores(**{name: rng.uniform(0, 1, (L, H)) for name in HeadScores.__dataclass_fields__})
    fig = plot_head_scores(scores)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(scores.as_dict())
    for ax, (name, values) in zip(panels, scores.as_dict().items()):
        assert name.replace("_", " ") in ax.get_title()
        np.testing.assert_allclose(ax.images[0].get_array(), values)
