"""The Scale & transfer page through AppTest, and its logic module `attnlab.app.studies`.

The studies are made here, once per module, with the library's own quick settings (a 2 x 3
scaling grid and the quick transfer study: seconds); the expected numbers are read from the
files those studies wrote, never typed in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from attnlab.app import studies
from attnlab.errors import DataError
from tests.app.apptest_checks import images, messages, page_ok

PAGE = "scale"
SCALE = "scale-quick"
TRANSFER = "transfer-quick"


@pytest.fixture(scope="module")
def study_runs(tmp_path_factory) -> Path:
    """A runs folder with a finished quick scaling study and a finished quick transfer study."""
    from attnlab.train.scale import ScaleConfig, run_scaling_study
    from attnlab.train.transfer import TransferConfig, run_transfer_study

    root = tmp_path_factory.mktemp("study-runs")
    run_scaling_study(
        root / SCALE,
        ScaleConfig(quick=True, sizes=("1x16", "1x32"), tokens=(4_000, 8_000, 16_000), bootstrap=0, progress=False),
    )
    run_transfer_study(root / TRANSFER, TransferConfig(quick=True, target="licenses", progress=False))
    return root


def _copy(study_runs: Path, tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "runs"
    for name in names:
        shutil.copytree(study_runs / name, root / name)
    return root


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# --- the logic module --------------------------------------------------------------------------------------


def test_find_studies_lists_the_studies_not_their_runs(study_runs):
    found = {e.relative: e for e in studies.find_studies(study_runs)}
    assert set(found) == {SCALE, TRANSFER}  # the run folders inside (runs/...) are not studies
    assert found[SCALE].kind == "scale" and found[TRANSFER].kind == "transfer"
    assert all(e.finished and e.writer is None for e in found.values())
    assert found[SCALE].label() == f"{SCALE} · scaling study · finished"
    assert studies.find_studies(study_runs / "missing") == []


def test_load_study_reads_the_scaling_study_back(study_runs):
    from attnlab.train.scale import read_study

    view = studies.load_study(study_runs, SCALE)
    results = json.loads((study_runs / SCALE / "results.json").read_text())
    assert view.kind == "scale" and view.runs == read_study(study_runs / SCALE)
    assert [f.name for f in view.figures] == [name for name, _ in studies.FIGURES["scale"]]
    assert all(f.png == (study_runs / SCALE / f.name).read_bytes() and not f.redrawn for f in view.figures)
    assert dict(view.headline)["alpha (size exponent)"] == f"{results['fit']['alpha']:.3f}"
    assert dict(view.headline)["held-out prediction error"] == f"{results['held_out']['relative_error']:+.1%}"
    assert view.report == (study_runs / SCALE / "report.md").read_text()


def test_load_study_refuses_paths_outside_the_runs_folder(study_runs):
    from attnlab.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not a folder inside the runs folder"):
        studies.load_study(study_runs, "../elsewhere")
    with pytest.raises(DataError, match="no longer a scaling or transfer study"):
        studies.load_study(study_runs, f"{SCALE}/runs")


# --- the page ----------------------------------------------------------------------------------------------


def test_the_page_without_studies_says_how_to_make_one(app, tmp_path):
    at = app(tmp_path / "nothing-here", PAGE)
    page_ok(at)
    assert "does not exist yet" in messages(at) and "attnlab scale --out" in messages(at)
    (tmp_path / "empty").mkdir()
    at = app(tmp_path / "empty", PAGE)
    page_ok(at)
    assert "No scaling or transfer study" in messages(at) and "attnlab transfer --out" in messages(at)


def test_the_page_shows_a_scaling_study(app, study_runs):
    from attnlab.train.scale import read_study

    at = app(study_runs, PAGE)
    at.selectbox(key="scale_study").set_value(SCALE).run()
    page_ok(at)
    assert images(at) == 3
    results = json.loads((study_runs / SCALE / "results.json").read_text())
    metrics = _metrics(at)
    assert metrics["runs"] == str(len(read_study(study_runs / SCALE)))
    assert metrics["beta (data exponent)"] == f"{results['fit']['beta']:.3f}"
    assert any("Held out: the largest-compute run" in m.value for m in at.markdown)  # the report tab
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == results["runs"]


def test_the_page_shows_a_transfer_study(app, study_runs):
    from attnlab.train.transfer import read_study

    at = app(study_runs, PAGE)
    at.selectbox(key="scale_study").set_value(TRANSFER).run()
    page_ok(at)
    assert images(at) == 2
    gains = read_study(study_runs / TRANSFER, "gains")
    metrics = _metrics(at)
    for g in (gains[0], gains[-1]):
        assert metrics[f"gain at {g['target_chars']:,} characters"] == f"{g['gain_best_mean']:+.3f} nats"
    conclusion = json.loads((study_runs / TRANSFER / "results.json").read_text())["conclusion"]
    assert any(conclusion in c.value for c in at.caption)
    assert [len(d.value) for d in at.dataframe] == [len(gains), len(read_study(study_runs / TRANSFER, "runs"))]


def test_a_half_written_study_gets_a_message_not_a_traceback(app, study_runs, tmp_path):
    root = _copy(study_runs, tmp_path, SCALE)
    (root / SCALE / "results.json").unlink()  # what a study stopped before its end leaves
    assert [e.label() for e in studies.find_studies(root)] == [f"{SCALE} · scaling study · incomplete"]
    at = app(root, PAGE)
    page_ok(at)
    assert "is incomplete: it has no results.json" in messages(at) and "attnlab scale" in messages(at)
    assert images(at) == 0


def test_a_corrupt_study_gets_a_message_not_a_traceback(app, study_runs, tmp_path):
    root = _copy(study_runs, tmp_path, SCALE, TRANSFER)
    (root / SCALE / "results.json").write_text('{"grid": {"sizes": ', encoding="utf-8")  # cut off mid-write
    (root / TRANSFER / "gains.csv").write_text("target_chars,gain_best_mean\nfive,lots\n", encoding="utf-8")
    at = app(root, PAGE)
    for name, expected in ((SCALE, "results.json is damaged"), (TRANSFER, "gains.csv is damaged")):
        at.selectbox(key="scale_study").set_value(name).run()
        page_ok(at)
        assert expected in messages(at), messages(at)
        assert images(at) == 0


def test_a_damaged_figure_is_drawn_again_from_the_tables(app, study_runs, tmp_path):
    root = _copy(study_runs, tmp_path, SCALE)
    (root / SCALE / "loss_vs_tokens.png").write_bytes(b"not a png")
    (root / SCALE / "loss_vs_compute.png").unlink()
    view = studies.load_study(root, SCALE)
    assert [f.redrawn for f in view.figures] == [False, True, True]
    assert all(f.png.startswith(studies.PNG_SIGNATURE) for f in view.figures)
    at = app(root, PAGE)
    page_ok(at)
    assert images(at) == 3
