"""Helpers for the lab notebooks (notebooks/*.ipynb): the fast switch, instructor mode,
run folders and inline HTML.

Two environment variables change how a notebook runs; both are read when a helper is
called, so they can also be set from inside a notebook (`os.environ[...] = "1"`):

* `ATTNLAB_FAST=1`: fast mode. Notebooks pick smaller sizes and fewer training steps
  with `pick(normal=..., fast=...)`; every cell still runs. The test suite executes
  every notebook this way.
* `ATTNLAB_SOLUTIONS=1`: instructor mode. An exercise function decorated with
  `@exercise` is replaced by the reference solution of the same name from
  `attnlab.exercises.solutions`, so the notebook runs with every exercise solved and every
  `check` call passes. Without it the learner's own function is used.

A typical exercise cell:

    @labs.exercise
    def attention(q, k, v, mask=None):
        raise NotImplementedError  # your code here

    check.attention(attention)

Nothing here is needed outside the notebooks; the library never imports it. Like
`attnlab.exercises.check`, it prints its few messages: they are meant for the notebook's reader.
"""

from __future__ import annotations

import functools
import html
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

FAST_ENV = "ATTNLAB_FAST"  # "1" = fast mode (the test suite's setting)
SOLUTIONS_ENV = "ATTNLAB_SOLUTIONS"  # "1" = instructor mode (exercises filled from attnlab.exercises.solutions)
_TRUE = ("1", "true", "yes", "on")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def fast_mode() -> bool:
    """True when `ATTNLAB_FAST` is set to 1 (or true/yes/on): shrink training, run every cell."""
    return _flag(FAST_ENV)


def instructor_mode() -> bool:
    """True when `ATTNLAB_SOLUTIONS` is set to 1 (or true/yes/on): exercises use the reference solutions."""
    return _flag(SOLUTIONS_ENV)


def pick(normal: T, fast: T) -> T:
    """`fast` in fast mode, else `normal`.

    Example: `steps = labs.pick(normal=1000, fast=40)`.
    """
    return fast if fast_mode() else normal


def exercise(fn: Callable[..., Any] | str) -> Any:
    """Mark a learner's exercise function; in instructor mode swap in the reference solution.

    Use it as `@exercise` (the solution has the function's name) or as
    `@exercise("attention")` (the solution's name given explicitly).

    Args:
        fn: the learner's function, or the name of the solution in `attnlab.exercises.solutions`.
    Returns:
        The learner's function unchanged, or in instructor mode `attnlab.exercises.solutions.<name>`.
    Raises:
        ConfigError: `attnlab.exercises.solutions` has no solution of that name (a typo in the notebook).
    """
    if isinstance(fn, str):
        return functools.partial(_exercise, name=fn)
    return _exercise(fn, name=fn.__name__)


def _exercise(fn: F, name: str) -> F:
    from attnlab.errors import ConfigError
    from attnlab.exercises import solutions

    if name not in solutions.__all__:
        raise ConfigError(
            f"attnlab.exercises.solutions has no exercise {name!r}; name the function after one of "
            f'{", ".join(solutions.__all__)}, or pass the name: @labs.exercise("attention")'
        )
    if not instructor_mode():
        return fn
    print(f"[instructor mode] {name}: using the reference solution attnlab.exercises.solutions.{name}")
    return getattr(solutions, name)


def setup(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch and print which modes are on (the first cell of every lab).

    Also hides tqdm's "IProgress not found" warning: without ipywidgets the progress
    bars fall back to text, which works in every notebook front end.

    Args:
        seed: the seed for `random`, NumPy and PyTorch.
    """
    from attnlab import __version__
    from attnlab.utils import seed_everything

    warnings.filterwarnings("ignore", message="IProgress not found")
    seed_everything(seed)
    modes = [
        f"fast mode {'ON' if fast_mode() else 'off'} ({FAST_ENV}=1 shortens training)",
        f"instructor mode {'ON' if instructor_mode() else 'off'} ({SOLUTIONS_ENV}=1 fills in the exercises)",
    ]
    print(f"attnlab {__version__} | seed {seed} | " + " | ".join(modes))


def new_run_dir(name: str, root: str | os.PathLike = "runs") -> Path:
    """A fresh path `root/name-YYYYmmdd-HHMMSS` for a training run (not created here).

    A notebook can be run again without "this folder already holds a trained model":
    each run gets its own folder. `root` is relative to the notebook's working directory.

    Args:
        name: a short label, e.g. "05_gpt".
        root: the parent folder.
    Returns:
        A path that does not exist yet.
    """
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():  # two runs within one second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def inline_html(document: str, height: int = 560) -> Any:
    """Show a complete HTML page (e.g. the attention head view) inside a notebook output.

    The page goes into an `<iframe srcdoc=...>`, so its scripts and styles run in their
    own document and do not touch the notebook's.

    Args:
        document: the page's HTML.
        height: frame height in pixels.
    Returns:
        An `IPython.display.HTML` object (the notebook shows it when it ends a cell).
    """
    from IPython.display import HTML

    frame = (
        f'<iframe srcdoc="{html.escape(document, quote=True)}" style="width: 100%; height: {int(height)}px; '
        'border: 1px solid #ccc;" sandbox="allow-scripts"></iframe>'
    )
    return HTML(
        f"<div>{frame}</div>"
    )  # wrapped: IPython warns about a bare <iframe> (it suggests IFrame, which needs a URL)


__all__ = [
    "FAST_ENV",
    "SOLUTIONS_ENV",
    "exercise",
    "fast_mode",
    "inline_html",
    "instructor_mode",
    "new_run_dir",
    "pick",
    "setup",
]
