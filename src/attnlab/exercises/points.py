"""Check of the farthest-point-sampling exercise (lab 3): pick well spread centres of a point cloud.

Farthest-point sampling (Eldar et al. 1997; Qi et al. 2017, "PointNet++") chooses the
centres of the patch tokens in `attnlab.models.point`. Each check is
`attnlab.exercises.check.<name>`; the shared machinery is in `_core`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import Case, CheckResult, Exercise, Mistake, rng, run_check

# ---------------------------------------------------------------------------
# farthest-point sampling
# ---------------------------------------------------------------------------


def _fps_cases() -> list[Case]:
    r = rng(10)
    line = np.zeros((5, 3))
    line[:, 0] = [0.0, 1.0, 2.0, 3.0, 10.0]  # the centroid is at x = 3.2: the first pick is x = 10
    return [
        Case("5 points on a line at x = 0, 1, 2, 3, 10, 3 picks", (line, 3)),
        Case("a random cloud of 40 points, 6 picks", (r.normal(size=(40, 3)), 6)),
        Case("a cloud of 30 points far from the origin, 5 picks", (r.normal(size=(30, 3)) * 0.5 + [4.0, -3.0, 2.0], 5)),
        Case("one pick", (r.normal(size=(12, 3)), 1)),
        Case("every point of a 7-point cloud", (r.normal(size=(7, 3)), 7)),
    ]


def _squared(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return ((np.asarray(points, dtype=np.float64) - centre) ** 2).sum(axis=1)


def _fps_variant(first: Callable[[np.ndarray], int], update: str = "min") -> Callable[[np.ndarray, int], np.ndarray]:
    """Farthest-point sampling with another first pick or another way to combine the distances."""

    def fps(points: np.ndarray, num_samples: int) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        chosen = [first(points)]
        combined = _squared(points, points[chosen[0]])
        for _ in range(num_samples - 1):
            chosen.append(int(combined.argmax()))
            new = _squared(points, points[chosen[-1]])
            combined = {"min": np.minimum(combined, new), "last": new, "sum": combined + new}[update]
        return np.asarray(chosen, dtype=np.int64)

    return fps


def _farthest_from_centroid(points: np.ndarray) -> int:
    return int(_squared(points, points.mean(axis=0)).argmax())


def _fps_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    if got == (*want, 3):
        return ("returns_points", "return the INDICES of the chosen points (ints, shape (G,)), not their xyz.")
    return None


FARTHEST_POINT_SAMPLE = Exercise(
    name="farthest_point_sample",
    reference=solutions.farthest_point_sample,
    cases=_fps_cases,
    mistakes=[
        Mistake(
            "starts_at_point_zero",
            _fps_variant(lambda p: 0),
            "start with the point farthest from the cloud's centroid (points.mean(axis=0)), not with point 0: "
            "a set has no first point, and the answer must not depend on how the points are listed.",
        ),
        Mistake(
            "farthest_from_origin",
            _fps_variant(lambda p: int(_squared(p, np.zeros(3)).argmax())),
            "the first pick is the point farthest from the cloud's CENTROID (points.mean(axis=0)), not from the "
            "origin: on a cloud far from (0, 0, 0) the two differ.",
        ),
        Mistake(
            "starts_nearest_centroid",
            _fps_variant(lambda p: int(_squared(p, p.mean(axis=0)).argmin())),
            "the first pick is the point FARTHEST from the centroid (argmax), not the nearest.",
        ),
        Mistake(
            "last_pick_only",
            _fps_variant(_farthest_from_centroid, "last"),
            "keep, for every point, its distance to the NEAREST pick so far: "
            "nearest = np.minimum(nearest, distance to the new pick), then take the argmax of that.",
        ),
        Mistake(
            "sum_of_distances",
            _fps_variant(_farthest_from_centroid, "sum"),
            "combine the distances to the picks with a minimum, not a sum: a point is far from the picks only "
            "when it is far from the nearest of them.",
        ),
        Mistake(
            "sorted_indices",
            lambda p, g: np.sort(solutions.farthest_point_sample(p, g)),
            "return the indices in the order they were picked, not sorted.",
        ),
    ],
    general_hint=(
        "first pick: argmax of the squared distance to points.mean(axis=0); then keep nearest = the distance "
        "of every point to its nearest pick (np.minimum after each pick) and pick its argmax, num_samples times."
    ),
    shape_hint=_fps_shape,
)


def farthest_point_sample(
    fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto"
) -> CheckResult:
    """Check `fn(points, num_samples)` = farthest-point sampling; points (P, 3) -> (G,) indices.

    Args and return as `softmax`.
    """
    return run_check(FARTHEST_POINT_SAMPLE, fn, strict=strict, verbose=verbose, framework=framework)


__all__ = ["farthest_point_sample"]
