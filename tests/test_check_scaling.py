"""The measurement checks of lab 7 (`attnlab.exercises.scaling`): fit_power_law, predict_loss, gain_slope.

The runs are drawn from a known law with a little noise; the library's fit
(`attnlab.train.scaling_law.fit_scaling_law`) is computed here, as the notebook passes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.exercises import check, solutions
from attnlab.exercises.scaling import prediction_band
from attnlab.train.scaling_law import ScalingLaw, fit_scaling_law

TRUE = ScalingLaw(E=1.2, A=30.0, B=80.0, alpha=0.35, beta=0.3)


@pytest.fixture(scope="module")
def runs():
    n, d = np.meshgrid([3e3, 1.2e4, 2.5e4, 5.5e4], [1.6e4, 3.2e4, 6.4e4, 1.28e5])
    n, d = n.ravel(), d.ravel()
    noise = np.random.default_rng(0).normal(scale=0.005, size=n.size)
    losses = TRUE.predict(n, d) * (1 + noise)
    return n, d, losses, fit_scaling_law(n, d, losses)


def test_the_reference_fit_passes_and_prints_both_laws(runs, capsys):
    n, d, losses, law = runs
    result = check.fit_power_law(solutions.fit_power_law, n, d, losses, reference=law)
    assert result.passed
    out = capsys.readouterr().out
    assert "yours" in out and "library" in out and "✅ fit_power_law: correct!" in out


@pytest.mark.parametrize(
    "answer, mistake",
    [
        (lambda n, d, loss: (1.0, 1.0, 1.0, -1.0, 1.0), "negative"),
        (lambda n, d, loss: solutions.fit_power_law(d, n, loss), "bad_fit"),  # N and D swapped
        (lambda n, d, loss: (1.0, 2.0), "not_five_numbers"),
        (lambda n, d, loss: None, "returns_none"),
    ],
)
def test_wrong_fits_get_a_hint_and_never_raise(runs, answer, mistake):
    n, d, losses, law = runs
    result = check.fit_power_law(answer, n, d, losses, reference=law, verbose=False)
    assert not result.passed and result.mistake == mistake and result.hint


def test_a_stub_says_not_implemented(runs):
    n, d, losses, law = runs

    def stub(*args):
        raise NotImplementedError

    for result in (
        check.fit_power_law(stub, n, d, losses, reference=law, verbose=False),
        check.predict_loss(stub, n, d, losses, new_params=1e5, new_tokens=1.28e5, measured=[2.0], residual=0.01),
        check.gain_slope(stub, [1e3, 4e3], [0.2, 0.1], verbose=False),
    ):
        assert not result.passed and result.mistake == "not_implemented" and "NotImplementedError" in result.message


def test_the_prediction_band_is_the_seeds_range_widened_by_the_measured_errors():
    assert prediction_band([2.0, 2.1], 0.02) == pytest.approx((2.0 * 0.96, 2.1 * 1.04))
    assert prediction_band([2.0], 0.001) == pytest.approx((2.0 * 0.99, 2.0 * 1.01))  # the 1% floor
    assert prediction_band([2.0], 0.01, held_out_error=-0.05) == pytest.approx((1.9, 2.1))


def test_predict_loss_judges_against_the_measurement(runs):
    n, d, losses, law = runs
    new_n, new_d = 1.5e5, 1.28e5
    truth = float(TRUE.predict(new_n, new_d))
    good = check.predict_loss(
        solutions.predict_loss, n, d, losses, new_params=new_n, new_tokens=new_d, measured=[truth], residual=0.01
    )
    assert good.passed and f"{truth:.4f}" in good.message
    largest = float(losses[np.argmax(n * d)])  # "the grid's largest model" is no prediction of a bigger one
    worse = check.predict_loss(
        largest, n, d, losses, new_params=new_n, new_tokens=new_d, measured=[truth * 0.9], residual=0.005
    )
    assert not worse.passed and worse.mistake == "too_pessimistic"


def test_gain_slope_matches_polyfit_and_names_typical_mistakes():
    sizes, gains = [2_000, 8_000, 32_000], [0.26, 0.22, 0.21]
    assert solutions.gain_slope(sizes, gains) == pytest.approx(np.polyfit(np.log10(sizes), gains, 1)[0])
    assert check.gain_slope(solutions.gain_slope, sizes, gains, verbose=False).passed
    natural = check.gain_slope(lambda s, g: np.polyfit(np.log(s), g, 1)[0], sizes, gains, verbose=False)
    assert natural.mistake == "natural_log"
    both = check.gain_slope(lambda s, g: np.polyfit(np.log10(s), g, 1), sizes, gains, verbose=False)
    assert not both.passed and both.mistake == "not_a_number"
