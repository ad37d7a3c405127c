"""The offline room kit (`attnlab.room.kit`, `attnlab room pack|check`), with no network.

pip is replaced by a fake that writes tiny wheels with real METADATA and, like pip, evaluates
environment markers for this machine (Linux, Python 3.11) instead of the target; one test runs
the real pip against a local wheelhouse (`--no-index --find-links`) for a foreign platform.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from attnlab import pretrained
from attnlab.cli import main
from attnlab.room import kit

REPO = Path(__file__).resolve().parents[2]


def make_wheel(folder: Path, name: str, version: str, requires: list[str] = (), tag: str = "py3-none-any") -> Path:
    """A minimal installable wheel `name-version-tag.whl` whose METADATA lists `requires`."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    path = folder / f"{name.replace('-', '_')}-{version}-{tag}.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}/METADATA", meta)
        z.writestr(f"{dist}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n")
        z.writestr(f"{dist}/RECORD", "")
    return path


ATTNLAB_REQUIRES = [
    "tqdm>=4.60",
    'tomli>=2.0; python_version < "3.11"',
    'jupyterlab>=4.0; extra == "labs"',
    'pytest; extra == "test"',
]
# What each fake package requires (markers that pip, running here, would get wrong for the target).
DEPS = {"tqdm": ['colorama; platform_system == "Windows"'], "jupyterlab": ["tomli; python_version < '3.11'"]}
HOST = {"python_version": "3.11", "platform_system": "Linux", "sys_platform": "linux", "os_name": "posix"}


class FakePip:
    """Stands in for `kit.run_pip`: records each call and writes the wheels pip would."""

    def __init__(self, torch_requires: list[str] = (), fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.torch_requires = list(torch_requires)
        self.fail_on = fail_on

    def __call__(self, args: list[str], what: str) -> str:
        from packaging.requirements import Requirement

        self.calls.append(list(args))
        opts, reqs, i = {}, [], 1
        takes_value = {"-d", "-w", "--platform", "--python-version", "--implementation", "--find-links", "-c"}
        takes_value |= {"--index-url"}
        while i < len(args):
            if args[i] in takes_value:
                opts.setdefault(args[i], []).append(args[i + 1])
                i += 2
                continue
            if not args[i].startswith("-"):
                reqs.append(args[i])
            i += 1
        if self.fail_on and any(self.fail_on in r for r in reqs):
            raise kit.KitError(f"{what} failed: ERROR: No matching distribution found for {self.fail_on}")
        if args[0] == "wheel":
            make_wheel(Path(opts["-w"][0]), "attnlab", "0.1.0", ATTNLAB_REQUIRES)
            return ""
        dest = Path(opts["-d"][0])
        tag = "cp311-cp311-" + opts["--platform"][0]
        for r in reqs:
            if r.startswith("torch=="):
                make_wheel(dest, "torch", r.split("==")[1] + "+cpu", self.torch_requires, tag)
                continue
            if r.endswith(".whl[labs]"):  # pip resolves with this machine's markers
                todo = [Requirement(x) for x in ATTNLAB_REQUIRES]
            else:
                todo = [Requirement(r)]
            while todo:
                req = todo.pop()
                if req.marker and not req.marker.evaluate({**HOST, "extra": "labs"}):
                    continue
                make_wheel(dest, req.name, "1.0", DEPS.get(req.name, []))
                todo += [Requirement(x) for x in DEPS.get(req.name, [])]
        return ""


@pytest.fixture
def room(tmp_path, monkeypatch):
    """A private cache with one downloaded data file and one pre-trained model, and a source checkout."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ATTNLAB_CACHE", str(cache))
    monkeypatch.delenv("ATTNLAB_MODELS", raising=False)
    (cache / "corpora").mkdir(parents=True)
    (cache / "corpora" / "tinyshakespeare.txt").write_text("To be, or not to be\n")
    (cache / "embeddings").mkdir()
    (cache / "embeddings" / "derived.npy").write_bytes(b"not a download")
    model = cache / "models" / "demo-gpt"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\0" * 16)
    (cache / "models" / "half-built").mkdir()  # no config.json: not a model
    probe = cache / "models" / "amp-probe"  # a `room build` probe: room.json, no config.json
    probe.mkdir()
    (probe / "probe.json").write_text("{}")
    room_json = {"format": pretrained.ROOM_FORMAT, "name": "amp-probe", "kind": "probe"}
    (probe / pretrained.ROOM_FILE).write_text(json.dumps({**room_json, "files": pretrained.file_table(probe)}))
    source = tmp_path / "src-checkout"
    (source / "notebooks").mkdir(parents=True)
    (source / "pyproject.toml").write_text("[project]\nname = 'attnlab'\n")
    (source / "requirements").mkdir()
    (source / "requirements" / "constraints.txt").write_text("# pins\ntorch==2.13.0  # the CPU build\n")
    (source / "notebooks" / "00_foundations.ipynb").write_text('{"cells": []}')
    (source / "notebooks" / "_run.py").write_text("")
    monkeypatch.chdir(tmp_path)
    return {"tmp": tmp_path, "cache": cache, "source": source}


def wheels(kit_dir: Path, key: str) -> set[str]:
    return {kit._wheel_name(p)[0] for p in (kit_dir / "wheels" / key).glob("*.whl")}


def test_pack_writes_a_complete_kit_with_target_markers(room):
    pip = FakePip()
    out = room["tmp"] / "KIT"
    result = kit.pack(out, ["linux-x86_64", "windows-amd64"], ["3.10", "3.11"], source=room["source"], pip=pip)
    assert result.kit == out and not (room["tmp"] / "KIT.partial").exists()
    assert set(result.wheelhouses) == {
        f"{p}-py{v}" for p in ("linux-x86_64", "windows-amd64") for v in ("3.10", "3.11")
    }
    # pip, running here (Linux, 3.11), would miss colorama on Windows and tomli on 3.10: the kit has them.
    assert wheels(out, "linux-x86_64-py3.11") == {"attnlab", "torch", "tqdm", "jupyterlab"}
    assert wheels(out, "linux-x86_64-py3.10") == {"attnlab", "torch", "tqdm", "jupyterlab", "tomli"}
    assert wheels(out, "windows-amd64-py3.11") == {"attnlab", "torch", "tqdm", "jupyterlab", "colorama"}
    assert "pytest" not in wheels(out, "windows-amd64-py3.10")  # only the labs extra
    # Payload: downloads (not derived caches), usable models only, notebooks only.
    assert (out / "data" / "corpora" / "tinyshakespeare.txt").read_text() == "To be, or not to be\n"
    assert not (out / "data" / "embeddings").exists()
    assert sorted(p.name for p in (out / "models").iterdir()) == ["amp-probe", "demo-gpt"]
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == ["00_foundations.ipynb"]
    assert (out / "install.sh").is_file() and (out / "install.ps1").is_file()
    # The manifest lists every other file with its real size and sha256.
    manifest = json.loads((out / kit.MANIFEST).read_text())
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {kit.MANIFEST}
    assert set(manifest["files"]) == on_disk
    for rel, info in manifest["files"].items():
        assert info["size"] == (out / rel).stat().st_size and info["sha256"] == kit._sha256(out / rel)
    assert manifest["platforms"] == ["linux-x86_64", "windows-amd64"] and manifest["pythons"] == ["3.10", "3.11"]
    assert manifest["attnlab_version"] and manifest["created"]
    assert kit.check(out).good


def test_torch_comes_alone_from_the_cpu_index_and_macos_from_the_default_index(room):
    pip = FakePip()
    kit.pack(room["tmp"] / "K", ["linux-x86_64", "macos-arm64"], ["3.12"], source=room["source"], pip=pip)
    torch_calls = [c for c in pip.calls if "torch==2.13.0" in c]
    assert len(torch_calls) == 2 and all("--no-deps" in c and "--only-binary=:all:" in c for c in torch_calls)
    linux, mac = torch_calls
    assert linux[linux.index("--index-url") + 1] == kit.TORCH_CPU_INDEX
    assert "manylinux_2_28_x86_64" in linux and "--python-version" in linux and "3.12" in linux
    assert "--index-url" not in mac and "macosx_12_0_arm64" in mac
    # The rest is pinned to the exact torch downloaded, so pip cannot swap in another build.
    rest = next(c for c in pip.calls if c[0] == "download" and any(a.endswith(".whl[labs]") for a in c))
    assert Path(rest[rest.index("-c") + 1]).name.startswith("constraints-")
    assert not any(p.name.startswith("constraints-") for p in (room["tmp"] / "K").rglob("*"))


def test_torch_version_per_platform_where_the_pin_is_not_published(room):
    pip = FakePip()
    versions = kit.parse_torch_versions("macos-arm64=2.11.0")
    kit.pack(
        room["tmp"] / "K",
        ["linux-x86_64", "macos-arm64"],
        ["3.11"],
        source=room["source"],
        pip=pip,
        torch_versions=versions,
    )
    torch_calls = [next(a for a in c if a.startswith("torch==")) for c in pip.calls if any("torch==" in a for a in c)]
    assert torch_calls == ["torch==2.13.0", "torch==2.11.0"]
    # The rest of the mac wheelhouse is pinned to the torch it got.
    mac_rest = next(c for c in pip.calls if any(a.endswith(".whl[labs]") for a in c) and "macosx_12_0_arm64" in c)
    assert Path(mac_rest[mac_rest.index("-c") + 1]).name == "constraints-macos-arm64-py3.11.txt"
    assert {p.name.split("-")[1] for p in (room["tmp"] / "K" / "wheels").rglob("torch-*.whl")} == {
        "2.13.0+cpu",
        "2.11.0+cpu",
    }
    assert kit.parse_torch_versions("2.11.0") == {"": "2.11.0"}
    assert kit.parse_torch_versions("2.12,windows-amd64=2.11.0") == {"": "2.12", "windows-amd64": "2.11.0"}
    for bad, message in [
        ("macos=2.11.0", "unknown platform 'macos'"),
        ("latest", "not a torch version"),
        ("2.11.0,2.12.0", "two versions for every platform"),
    ]:
        with pytest.raises(kit.KitError, match=message):
            kit.parse_torch_versions(bad)


def test_an_unpublished_torch_says_how_to_pick_another(room):
    with pytest.raises(kit.KitError, match=r"--torch macos-arm64=VERSION") as e:
        kit.pack(room["tmp"] / "K", ["macos-arm64"], ["3.11"], source=room["source"], pip=FakePip(fail_on="torch=="))
    assert "pip index versions torch --platform macosx" in str(e.value)
    assert not (room["tmp"] / "K").exists()


def test_a_local_torch_folder_means_no_index(room):
    local = room["tmp"] / "local-wheels"
    local.mkdir()
    pip = FakePip()
    kit.pack(room["tmp"] / "K", ["linux-x86_64"], ["3.11"], source=room["source"], pip=pip, torch_index=str(local))
    call = next(c for c in pip.calls if "torch==2.13.0" in c)
    assert "--no-index" in call and call[call.index("--find-links") + 1] == str(local.resolve())


def test_a_cuda_torch_is_refused_and_nothing_is_left(room):
    pip = FakePip(torch_requires=["nvidia-cublas-cu12==12.4"])
    out = room["tmp"] / "K"
    with pytest.raises(kit.KitError, match="CUDA build"):
        kit.pack(out, ["linux-x86_64"], ["3.11"], source=room["source"], pip=pip, torch_index="https://mirror/x")
    assert not out.exists() and not (room["tmp"] / "K.partial").exists()


def test_nvidia_requirements_behind_a_linux_marker_are_not_a_cuda_build_on_macos(room):
    # PyPI's macOS torch wheels list the nvidia-* packages with `; platform_system == "Linux"`.
    marked = ['nvidia-cublas-cu12==12.4; platform_system == "Linux" and platform_machine == "x86_64"']
    marked.append("filelock")
    seen: list[list[str]] = []

    class Recording(FakePip):
        def __call__(self, args, what):
            # pip resolves the rest against a stand-in torch whose requirements hold on the target.
            if any(a.endswith(".whl[labs]") for a in args):
                links = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--find-links"]
                seen.append([r for d in links for w in d.glob("torch-*.whl") for r in kit._wheel_requires(w)])
            return super().__call__(args, what)

    kit.pack(room["tmp"] / "K", ["macos-arm64"], ["3.11"], source=room["source"], pip=Recording(torch_requires=marked))
    assert seen == [["filelock"]]
    [torch] = (room["tmp"] / "K" / "wheels" / "macos-arm64-py3.11").glob("torch-*.whl")
    assert kit._wheel_requires(torch) == marked and "-1-" not in torch.name  # the real wheel, back in place
    assert kit.check(room["tmp"] / "K").good
    with pytest.raises(kit.KitError, match="CUDA build"):
        kit.pack(
            room["tmp"] / "L", ["linux-x86_64"], ["3.11"], source=room["source"], pip=FakePip(torch_requires=marked)
        )


def test_a_failed_download_names_the_package_and_platform_and_keeps_the_old_kit(room, capsys):
    out = room["tmp"] / "K"
    kit.pack(out, ["linux-x86_64"], ["3.11"], source=room["source"], pip=FakePip())
    before = (out / kit.MANIFEST).read_text()
    with pytest.raises(kit.KitError, match=r"colorama.*windows-amd64, Python 3.11|windows-amd64.*colorama"):
        kit.pack(out, ["windows-amd64"], ["3.11"], source=room["source"], pip=FakePip(fail_on="colorama"))
    assert (out / kit.MANIFEST).read_text() == before and kit.check(out).good
    assert not (room["tmp"] / "K.partial").exists()


def test_run_pip_reports_pips_error_lines(monkeypatch):
    def fake_run(cmd, **kwargs):
        stderr = "Looking in indexes: x\nERROR: Could not find a version that satisfies the requirement torch==9\n"
        return subprocess.CompletedProcess(cmd, 1, "", stderr)

    monkeypatch.setattr(kit.subprocess, "run", fake_run)
    with pytest.raises(
        kit.KitError, match=r"^downloading torch for windows-amd64 failed: ERROR: Could not find .*torch==9"
    ):
        kit.run_pip(["download", "torch==9"], "downloading torch for windows-amd64")


def test_bad_input_is_one_clear_error(room):
    (room["tmp"] / "notes").mkdir()
    (room["tmp"] / "notes" / "todo.txt").write_text("keep me")
    (room["tmp"] / "a-file").write_text("x")
    cases = [
        (dict(out=room["tmp"] / "notes"), "not a kit"),
        (dict(out=room["tmp"] / "a-file"), "is a file"),
        (dict(platforms=["linux-arm64"]), "unknown platform 'linux-arm64'"),
        (dict(pythons=["3.9"]), "not 3.9"),
        (dict(pythons=["three"]), "not a Python version"),
        (dict(source=room["tmp"] / "notes"), "source checkout"),
    ]
    for change, message in cases:
        args = dict(out=room["tmp"] / "new", platforms=["linux-x86_64"], pythons=["3.11"], source=room["source"])
        args.update(change)
        with pytest.raises(kit.KitError, match=message):
            kit.pack(args.pop("out"), args.pop("platforms"), args.pop("pythons"), pip=FakePip(), **args)
    assert (room["tmp"] / "notes" / "todo.txt").read_text() == "keep me" and not (room["tmp"] / "new").exists()


@pytest.fixture
def packed(room):
    out = room["tmp"] / "KIT"
    kit.pack(out, ["linux-x86_64"], ["3.11"], source=room["source"], pip=FakePip())
    return out


def test_check_finds_missing_extra_and_changed_files(packed):
    assert kit.check(packed).good
    nb = packed / "notebooks" / "00_foundations.ipynb"
    nb.write_text(nb.read_text().replace("[]", "{}"))  # same size, other bytes
    data = packed / "data" / "corpora" / "tinyshakespeare.txt"
    data.write_text("To be")
    wheel = next((packed / "wheels" / "linux-x86_64-py3.11").glob("tqdm-*.whl"))
    wheel.unlink()
    (packed / "stray.txt").write_text("?")
    r = kit.check(packed)
    assert not r.good
    assert r.missing == [wheel.relative_to(packed).as_posix()]
    assert r.extra == ["stray.txt"]
    assert dict(r.changed) == {
        "notebooks/00_foundations.ipynb": "sha256 differs",
        "data/corpora/tinyshakespeare.txt": f"size 5 != {len('To be, or not to be') + 1}",
    }


def test_check_cli_exit_codes(packed, capsys):
    assert main(["room", "check", str(packed)]) == 0
    assert "the kit is good" in capsys.readouterr().out
    (packed / "install.sh").write_text("echo changed\n")
    assert main(["room", "check", str(packed)]) == 1
    out = capsys.readouterr().out
    assert "changed" in out and "install.sh" in out and "NOT good" in out
    (packed / kit.MANIFEST).write_text("{not json")
    assert main(["room", "check", str(packed)]) == 2
    assert "manifest cannot be read" in capsys.readouterr().err
    (packed / kit.MANIFEST).write_text('{"files": {"a": {"size": "big"}}}')
    assert main(["room", "check", str(packed)]) == 2
    assert main(["room", "check", str(packed / "install.sh")]) == 2
    assert "is not a kit folder" in capsys.readouterr().err


def test_pack_cli(room, monkeypatch, capsys):
    monkeypatch.setattr(kit, "run_pip", FakePip())
    argv = ["room", "pack", "--out", "K", "--platform", "windows-amd64", "--python", "3.12", "--archive"]
    assert main([*argv, "--source", str(room["source"])]) == 0
    out = capsys.readouterr().out
    assert "wheels/windows-amd64-py3.12" in out and "attnlab room check" in out
    assert (room["tmp"] / "K.zip").is_file() and not (room["tmp"] / "K" / "install.sh").exists()
    with zipfile.ZipFile(room["tmp"] / "K.zip") as z:
        assert "K/manifest.json" in z.namelist()
    assert main(["room", "pack", "--out", "K2", "--platform", "beos"]) == 2
    assert "unknown platform 'beos'" in capsys.readouterr().err


def test_install_scripts_install_from_the_kit_only(packed):
    sh = (packed / "install.sh").read_text()
    for needle in ("--no-index", '--find-links "$WHEELS"', "PIP_NO_INDEX=1", "attnlab[labs]==", "doctor --no-probe"):
        assert needle in sh
    assert "install_payload" in sh and '"$PYTHON" -m venv "$VENV"' in sh
    assert subprocess.run(["sh", "-n", str(packed / "install.sh")]).returncode == 0  # it parses
    ps1 = kit.install_script_text("install.ps1", ["windows-amd64"], ["3.11"])
    for needle in ("--no-index", "--find-links $Wheels", 'PIP_NO_INDEX = "1"', "Scripts", "doctor --no-probe"):
        assert needle in ps1
    assert ps1.lstrip().startswith("#") and "param(" in ps1.split("$ErrorActionPreference")[0]


def test_install_payload_puts_data_and_models_in_the_cache(packed, room, monkeypatch, tmp_path):
    laptop = tmp_path / "laptop-cache"
    monkeypatch.setenv("ATTNLAB_CACHE", str(laptop))
    (laptop / "corpora").mkdir(parents=True)
    (laptop / "corpora" / "tinyshakespeare.txt").write_text("mine")
    counts = kit.install_payload(packed)
    assert counts == {"data": 0, "models": 2}  # an existing file is kept
    assert (laptop / "corpora" / "tinyshakespeare.txt").read_text() == "mine"
    assert (laptop / "models" / "demo-gpt" / "config.json").is_file()
    assert pretrained.check_model(laptop / "models" / "amp-probe")["kind"] == "probe"  # verified, then installed


def test_missing_requirements_follows_extras_and_target_markers(tmp_path):
    make_wheel(tmp_path, "attnlab", "0.1.0", ATTNLAB_REQUIRES)
    make_wheel(tmp_path, "tqdm", "4.0", DEPS["tqdm"])
    win = kit._marker_env(kit.PLATFORMS["windows-amd64"], "3.10")
    assert kit.missing_requirements(tmp_path, "attnlab", ["labs"], win) == ["colorama", "jupyterlab>=4.0", "tomli>=2.0"]
    linux = kit._marker_env(kit.PLATFORMS["linux-x86_64"], "3.12")
    assert kit.missing_requirements(tmp_path, "attnlab", [], linux) == []


def test_real_pip_downloads_a_foreign_platform_from_a_local_wheelhouse(room, monkeypatch):
    """pip itself, offline: --platform/--python-version tags, --only-binary, and the marker fix-up."""
    local = room["tmp"] / "local-index"
    make_wheel(local, "torch", "2.13.0+cpu", [], "cp310-cp310-win_amd64")
    make_wheel(local, "torch", "2.13.0+cpu", [], "cp311-cp311-manylinux_2_28_x86_64")
    for name, version, requires in [
        ("tqdm", "4.66.0", DEPS["tqdm"]),
        ("jupyterlab", "4.0.0", []),
        ("colorama", "1.0", []),
        ("tomli", "2.0.0", []),
    ]:  # versions that meet ATTNLAB_REQUIRES' specifiers
        make_wheel(local, name, version, requires)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)

    def pip(args, what):
        if args[0] == "wheel":  # building attnlab itself takes a while; the downloads below are real
            make_wheel(Path(args[args.index("-w") + 1]), "attnlab", "0.1.0", ATTNLAB_REQUIRES)
            return ""
        return kit.run_pip(args, what)

    out = room["tmp"] / "K"
    kit.pack(
        out, ["windows-amd64"], ["3.10"], source=room["source"], pip=pip, torch_index=str(local), index_url=str(local)
    )
    names = {p.name for p in (out / "wheels" / "windows-amd64-py3.10").iterdir()}
    assert "torch-2.13.0+cpu-cp310-cp310-win_amd64.whl" in names
    assert {
        "colorama-1.0-py3-none-any.whl",
        "tomli-2.0.0-py3-none-any.whl",
        "jupyterlab-4.0.0-py3-none-any.whl",
    } <= names
    assert kit.check(out).good


@pytest.mark.skipif(shutil.which("sh") is None or sys.platform == "win32", reason="needs a POSIX sh")
def test_install_sh_refuses_a_python_the_kit_has_no_wheels_for(packed, tmp_path):
    shutil.rmtree(packed / "wheels" / "linux-x86_64-py3.11")
    (packed / "wheels" / "linux-x86_64-py3.99").mkdir()
    proc = subprocess.run(
        ["sh", str(packed / "install.sh"), str(tmp_path / "venv")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    if kit.this_platform() != "linux-x86_64":
        pytest.skip("the script's platform check comes first elsewhere")
    assert proc.returncode == 1 and "no wheels for linux-x86_64 with Python 3." in proc.stderr
    assert "linux-x86_64-py3.99" in proc.stderr and not (tmp_path / "venv").exists()
