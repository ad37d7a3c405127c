"""attnlab.exercises.labs: the notebooks' fast switch, instructor mode, run folders and inline HTML."""

from __future__ import annotations

import html

import pytest

from attnlab.errors import ConfigError
from attnlab.exercises import check, labs, solutions


@pytest.mark.parametrize(
    "value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("no", False)]
)
def test_fast_mode_and_pick_follow_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("ATTNLAB_FAST", value)
    assert labs.fast_mode() is expected
    assert labs.pick(normal=1000, fast=40) == (40 if expected else 1000)


def test_fast_mode_is_off_without_the_variable(monkeypatch):
    monkeypatch.delenv("ATTNLAB_FAST", raising=False)
    assert not labs.fast_mode()
    assert labs.pick(normal="big", fast="small") == "big"


def _stub(q, k, v, mask=None):
    raise NotImplementedError


def test_exercise_keeps_the_learners_function_outside_instructor_mode(monkeypatch, capsys):
    monkeypatch.delenv("ATTNLAB_SOLUTIONS", raising=False)

    @labs.exercise
    def attention(q, k, v, mask=None):
        raise NotImplementedError

    assert attention is not solutions.attention and attention.__name__ == "attention"
    result = check.attention(attention)
    assert not result and result.mistake == "not_implemented"
    assert capsys.readouterr().out.startswith("❌ attention: not yet.")


def test_exercise_swaps_in_the_solution_in_instructor_mode(monkeypatch, capsys):
    monkeypatch.setenv("ATTNLAB_SOLUTIONS", "1")

    @labs.exercise
    def attention(q, k, v, mask=None):
        raise NotImplementedError

    assert attention is solutions.attention
    assert "[instructor mode] attention" in capsys.readouterr().out
    assert check.attention(attention)  # passes
    named = labs.exercise("softmax")(_stub)  # the solution's name given explicitly
    assert named is solutions.softmax


def test_exercise_rejects_an_unknown_name(monkeypatch):
    monkeypatch.delenv("ATTNLAB_SOLUTIONS", raising=False)
    with pytest.raises(ConfigError, match="no exercise 'atention'"):
        labs.exercise("atention")(_stub)


def test_new_run_dir_gives_fresh_paths(tmp_path):
    first = labs.new_run_dir("05_gpt", root=tmp_path)
    assert first.parent == tmp_path and first.name.startswith("05_gpt-") and not first.exists()
    first.mkdir()
    second = labs.new_run_dir("05_gpt", root=tmp_path)  # same second: a suffix keeps it fresh
    assert second != first and not second.exists()


def test_inline_html_embeds_the_escaped_page():
    page = '<html><body><p class="x">a & b</p><script>var s = "</p>";</script></body></html>'
    shown = labs.inline_html(page, height=300)
    assert "height: 300px" in shown.data
    assert f'srcdoc="{html.escape(page, quote=True)}"' in shown.data
    assert "<script>" not in shown.data  # the page stays inside the attribute, escaped


def test_setup_prints_the_modes(monkeypatch, capsys):
    monkeypatch.setenv("ATTNLAB_FAST", "1")
    monkeypatch.delenv("ATTNLAB_SOLUTIONS", raising=False)
    labs.setup(seed=3)
    out = capsys.readouterr().out
    assert "seed 3" in out and "fast mode ON" in out and "instructor mode off" in out
