"""Progress bars that stay one line: a tqdm bar in a terminal, one updating output in a notebook.

In a terminal `progress_bar` is `tqdm.auto.tqdm`. In a Jupyter kernel (JupyterLab,
Notebook, VS Code, nbclient/nbconvert) tqdm's text bar would write every refresh to
stderr as `\\r`-separated frames: a front end draws them over each other, but the saved
.ipynb (and any viewer of it) keeps hundreds of them, and tqdm's widget bar needs
ipywidgets and stores widget state in the notebook. Here the bar is instead drawn as
one `text/plain` display output that each refresh *replaces* (`update_display_data`,
the same message `display(..., display_id=True).update(...)` sends), so a training
call leaves exactly one line in the cell, its final state.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["NOTEBOOK_MININTERVAL", "in_notebook_kernel", "progress_bar"]

NOTEBOOK_MININTERVAL = 0.5  # seconds between two redraws of a notebook bar (each is a kernel message)


def in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel (ipykernel), where stdout/stderr go to notebook cells."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # a half-initialised IPython: treat as a terminal
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class DisplayLine:
    """A file-like object for tqdm that shows what it writes as one updating display output.

    tqdm writes `"\\r" + bar + padding` at each refresh, `"\\n"` when a bar that is kept
    closes, and `"\\r" + spaces` to clear one that is not kept. The last bar text
    replaces the output's content; a clear empties it.

    Args:
        display: `IPython.display.display` (injectable for tests).
    """

    def __init__(self, display: Any = None):
        if display is None:
            from IPython.display import display
        self._display = display
        self._handle: Any = None
        self.text = ""  # what the output shows now

    def write(self, s: str) -> int:
        frame = s.rsplit("\r", 1)[-1] if "\r" in s else s
        if frame == "\n" or (not frame and "\r" not in s):
            return len(s)  # the newline tqdm ends a kept bar with; nothing to redraw
        text = frame.rstrip()
        if text == self.text:
            return len(s)
        self.text = text
        bundle = {"text/plain": text}
        if self._handle is None:
            self._handle = self._display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A tqdm progress bar (same arguments as `tqdm.tqdm`) that is one line wherever it runs.

    In a Jupyter kernel the bar goes to one updating display output (see the module
    docstring), redrawn at most every `NOTEBOOK_MININTERVAL` seconds; elsewhere this is
    `tqdm.auto.tqdm(iterable, **kwargs)`.
    """
    if not in_notebook_kernel() or "file" in kwargs:
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    from tqdm.std import tqdm

    kwargs.setdefault("mininterval", NOTEBOOK_MININTERVAL)
    kwargs.pop("dynamic_ncols", None)  # no terminal to measure; tqdm's default bar width
    return tqdm(iterable, file=DisplayLine(), **kwargs)
