"""Progress bars stay one line: in a notebook a training call leaves one updating output.

tqdm's text bar in a Jupyter kernel writes every refresh to stderr; a saved notebook
then holds hundreds of frames per training cell. `attnlab.progress.progress_bar` draws
the bar as one display output that each refresh replaces. Checked three ways: the
file object tqdm writes to, a Trainer under a stand-in notebook display, and a real
notebook kernel executed with nbclient (slow: a kernel start).
"""

from __future__ import annotations

import sys

import pytest

from attnlab import progress
from attnlab.progress import DisplayLine, progress_bar


class FakeDisplay:
    """Records what `IPython.display.display(..., display_id=True)` and `.update` receive."""

    def __init__(self):
        self.outputs: list[str] = []  # one entry per display output, its current text
        self.updates = 0

    def __call__(self, bundle, raw=False, display_id=False):
        assert raw and display_id is True
        self.outputs.append(bundle["text/plain"])
        index = len(self.outputs) - 1
        fake = self

        class Handle:
            def update(self, bundle, raw=False):
                assert raw
                fake.outputs[index] = bundle["text/plain"]
                fake.updates += 1

        return Handle()


def test_display_line_keeps_one_output_with_the_last_frame():
    from tqdm.std import tqdm

    shown = FakeDisplay()
    bar = tqdm(total=300, desc="train", file=DisplayLine(shown), mininterval=0, miniters=1)
    for _ in range(300):
        bar.update(1)
    bar.close()
    assert len(shown.outputs) == 1
    assert shown.updates > 100  # it really was redrawn, in place
    text = shown.outputs[0]
    assert text.startswith("train: 100%") and "300/300" in text
    assert "\r" not in text and "\n" not in text


def test_display_line_clears_a_bar_that_is_not_kept():
    from tqdm.std import tqdm

    shown = FakeDisplay()
    with tqdm(total=5, desc="probe", file=DisplayLine(shown), mininterval=0, leave=False) as bar:
        bar.update(5)
    assert shown.outputs == [""]


def test_outside_a_notebook_kernel_it_is_a_plain_tqdm_bar(capsys):
    assert not progress.in_notebook_kernel()  # pytest is no Jupyter kernel
    bar = progress_bar(range(3), desc="steps", mininterval=0)
    assert list(bar) == [0, 1, 2]
    assert not isinstance(bar.fp, DisplayLine)
    assert "steps: 100%" in capsys.readouterr().err


# Builds `trainer`: a tiny RNN on the recall task (a string, so a notebook cell can run it too).
TINY_TRAINER = """
from attnlab.compare.sequence import TaskBatchSource, build_sequence_model
from attnlab.data.recall_task import RecallTask
from attnlab.train import TorchEngine, TrainConfig, Trainer

task = RecallTask(num_symbols=4, seq_len=8)
engine = TorchEngine(build_sequence_model("rnn", task, quick=True), lr=1e-2, device="cpu", distributed=False)
config = TrainConfig(
    batch_size=8, max_iters=MAX_ITERS, eval_interval=50, eval_iters=1, log_interval=5, warmup_iters=5, seed=0
)
trainer = Trainer(engine, TaskBatchSource(task), config, None, description="tiny rnn")
"""


def _tiny_trainer(max_iters: int):
    scope: dict = {}
    exec(TINY_TRAINER.replace("MAX_ITERS", str(max_iters)), scope)
    return scope["trainer"]


def test_a_trainer_in_a_notebook_shows_one_updating_line(monkeypatch, capsys):
    shown = FakeDisplay()
    monkeypatch.setattr(progress, "in_notebook_kernel", lambda: True)
    monkeypatch.setattr(progress, "NOTEBOOK_MININTERVAL", 0.0)  # redraw at every step
    monkeypatch.setattr(progress, "DisplayLine", lambda: DisplayLine(shown))
    results = _tiny_trainer(120).fit()
    assert results["step"] == 120
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 0 and "\r" not in captured.err  # nothing went to the stream
    assert captured.out == ""
    assert len(shown.outputs) == 1 and shown.updates >= 100
    assert shown.outputs[0].startswith("tiny rnn: 100%") and "120/120" in shown.outputs[0]
    assert "tok/s=" in shown.outputs[0]  # recall batches are token sequences


@pytest.mark.slow
def test_a_training_cell_of_a_real_notebook_saves_one_line(tmp_path):
    """nbclient runs a cell that trains 400 steps: its saved outputs are one bar, no stream lines."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "attnlab_notebooks_run_progress", Path(__file__).resolve().parents[2] / "notebooks" / "_run.py"
    )
    runner = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = runner
    spec.loader.exec_module(runner)

    code = (
        "import attnlab.progress\n"
        "attnlab.progress.NOTEBOOK_MININTERVAL = 0.0  # a redraw at every step: the worst case\n"
        + TINY_TRAINER.replace("MAX_ITERS", "400")
        + 'print("steps:", trainer.fit()["step"])\n'
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    path = tmp_path / "progress.ipynb"
    nbformat.write(nb, str(path))
    run = runner.execute_notebook(path, cwd=tmp_path, env=runner.kernel_env(fast=True, solutions=False))
    outputs = run.notebook.cells[0].outputs
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert streams == "steps: 400\n"  # the cell's own print; no bar frames on stderr
    bars = [o for o in outputs if o.output_type == "display_data"]
    assert len(bars) == 1
    text = bars[0]["data"]["text/plain"]
    assert text.startswith("tiny rnn: 100%") and "400/400" in text and "\n" not in text
