"""attnlab's interactive web app (Streamlit): `attnlab app [--port P] [--runs-dir DIR]`.

Pages (one thin file each under `pages/`, wired together by `main.py`):
  Generate                 pick (or train) a GPT, sample step by step, see the top-5
                           next-token probabilities and the attention of the last step;
  Attention                layer/head heatmaps and the head view, for our GPT and MiniLM;
  Inside the block         hidden-state norms, what each sub-layer does, the logit lens;
  Scale & transfer         the figures, report and tables of finished `attnlab scale` and
                           `attnlab transfer` study folders (`studies`);
  Positions & embeddings   the positional-encoding and embedding figures, interactive;
  Vision & proteins        a digit through a trained ViT; a protein through a trained probe.

The app imports the library and holds no model logic: computations live in
`runs_folder`, `generation`, `training`, `vit_digits`, `protein_probes` and `studies` of this
package (no Streamlit import, unit-tested), `attnlab.analysis.lens` and
`attnlab.viz`; figures specific to the app are in `attnlab.app.figures`; `ui` holds
the Streamlit helpers shared by the pages. The app only reads model files inside the
user's runs folder (passed by the CLI in the environment variable `RUNS_ENV`), plus
what installed packages ship (MiniLM, the mnist5k digits, the embedded corpus).
"""

from __future__ import annotations

from pathlib import Path

RUNS_ENV = "ATTNLAB_APP_RUNS_DIR"  # the runs folder the app reads (set by `attnlab app`)
DEFAULT_RUNS_DIR = "runs"  # where `attnlab demo` writes


def main_script() -> Path:
    """Path of the Streamlit entry script (`streamlit run` takes it)."""
    return Path(__file__).resolve().parent / "main.py"


__all__ = ["DEFAULT_RUNS_DIR", "RUNS_ENV", "main_script"]
