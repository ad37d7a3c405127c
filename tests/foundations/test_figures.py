"""The lab's figures and `attnlab figures foundations`: files written, labelled, errors on bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.foundations import FIGURE_NAMES
from attnlab.foundations import figures as FIG

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk (bytes 16-24 of a PNG)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def built_figures():
    return {name: build() for name, (build, _) in FIG.FIGURES.items()}


def test_figure_registry_is_consistent():
    assert tuple(FIG.FIGURES) == FIGURE_NAMES


@pytest.mark.parametrize("name", FIGURE_NAMES)
def test_every_panel_has_title_axis_labels_and_the_figure_a_legend(built_figures, name):
    fig = built_figures[name]
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert panels, name
    for ax in panels:
        assert ax.get_title(), f"{name}: a panel without a title"
        assert ax.get_xlabel() and ax.get_ylabel(), f"{name}: panel {ax.get_title()!r} lacks axis labels"
    assert any(ax.get_legend() is not None for ax in panels), f"{name}: no legend"


def test_save_figure_writes_png_and_svg(built_figures, tmp_path):
    fig = built_figures["activations"]
    png = FIG.save_figure(fig, tmp_path / "a.png", dpi=40)
    svg = FIG.save_figure(fig, tmp_path / "a.svg")
    width, height = _png_size(png)
    assert width > 200 and height > 100
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.svg"]  # no temporary files left
    with pytest.raises(ConfigError, match="suffix"):
        FIG.save_figure(fig, tmp_path / "no_suffix")


def test_cli_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "figs" / "nested"  # created if missing
    assert main(["figures", "foundations", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    # every figure it wrote, besides the run folder's marker and lock (attnlab.runs)
    written = sorted(p.name for p in out.iterdir() if p.name != "run.json" and not p.name.startswith("."))
    assert sorted(Path(p).name for p in printed) == written  # prints exactly what it wrote
    for name in FIGURE_NAMES:
        assert f"{name}.png" in written
        width, height = _png_size(out / f"{name}.png")
        assert width >= 1000 and height >= 500  # projector-sized at the default dpi
    svgs = [n for n in written if n.endswith(".svg")]
    assert {"activations.svg", "regularization_paths.svg"} <= set(svgs)
    for svg in svgs:
        assert (out / svg).stat().st_size > 5000


def test_cli_options_only_no_svg_dpi(tmp_path, capsys):
    assert (
        main(
            [
                "figures",
                "foundations",
                "--out",
                str(tmp_path),
                "--only",
                "activations",
                "lr_schedule",
                "--no-svg",
                "--dpi",
                "50",
            ]
        )
        == 0
    )
    figures = sorted(p.name for p in tmp_path.iterdir() if p.name != "run.json" and not p.name.startswith("."))
    assert figures == ["activations.png", "lr_schedule.png"]
    small_width, _ = _png_size(tmp_path / "activations.png")
    assert small_width < 1000  # 50 dpi is a third of the default 150
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_cli_bad_dpi(tmp_path, capsys):
    assert main(["figures", "foundations", "--out", str(tmp_path / "x"), "--dpi", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnlab figures foundations: error: argument --dpi: the value must be from 20 to 1,200")
    assert err.count("\n") == 1
    assert not (tmp_path / "x").exists()  # checked before anything is written


def test_cli_unknown_figure_name_is_a_usage_error(tmp_path, capsys):
    assert main(["figures", "foundations", "--out", str(tmp_path / "x"), "--only", "nonsense"]) == 2
    assert not (tmp_path / "x").exists()
    err = capsys.readouterr().err
    assert "invalid choice: 'nonsense'" in err and err.count("\n") == 1


def test_cli_out_is_an_existing_file(tmp_path, capsys):
    target = tmp_path / "taken.txt"
    target.write_text("not a folder")
    assert main(["figures", "foundations", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnlab: error:") and "is a file, not a folder" in err and err.count("\n") == 1
    assert target.read_text() == "not a folder"  # untouched


def test_cli_out_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["figures", "foundations", "--out", str(blocker / "sub")]) == 2  # parent is a file
    err = capsys.readouterr().err
    assert err.startswith("attnlab: error:") and "--out" in err


def test_cli_without_a_lab(capsys):
    assert main(["figures"]) == 2
    assert capsys.readouterr().err.startswith("attnlab: error: choose a lab")


def test_write_all_figures_rejects_unknown_names(tmp_path):
    with pytest.raises(ConfigError, match="unknown figure"):
        FIG.write_all_figures(tmp_path, names=["activations", "nope"])
