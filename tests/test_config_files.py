"""Every way a config file (`attnlab train --config F`) can be wrong: exit 2 and one line naming the real cause.

Also the other user errors of the same class: an --out on a read-only file system, and
seeds outside 0 .. 2**32 - 1.
"""

import errno
import os
import sys
from pathlib import Path

import pytest

from attnlab import config as C
from attnlab.cli import main

CORPUS = "the quick brown fox jumps over the lazy dog.\n" * 30


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


def train_with_config(config_path, corpus, out, capsys, *extra: str) -> str:
    """Run `attnlab train --config F`; assert exit 2 and one stderr line; return that line."""
    rc = main(
        [
            "train",
            "--config",
            str(config_path),
            "--data",
            str(corpus),
            "--out",
            str(out),
            "--preset",
            "nano",
            "--max-iters",
            "1",
            "--train.device=cpu",
            *extra,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith("attnlab: error: ")
    return err[0]


def test_binary_file(tmp_path, corpus, capsys):
    f = tmp_path / "run.yaml"
    f.write_bytes(b"model:\n  embed_dim: 32\n\x00\x01\x02\xff")
    line = train_with_config(f, corpus, tmp_path / "o", capsys)
    assert "is a binary file (it holds NUL bytes)" in line and "does not exist" not in line


def test_latin1_file_names_line_and_column(tmp_path, corpus, capsys):
    f = tmp_path / "run.yaml"
    f.write_bytes("# réglages\ntrain:\n  lr: 0.001  # 'é'\n".encode("latin-1"))
    line = train_with_config(f, corpus, tmp_path / "o", capsys)
    assert "is not UTF-8 text: byte 0xe9 at line 1, column 4" in line and "save the file as UTF-8" in line


def test_utf8_with_a_byte_order_mark_is_fine(tmp_path, corpus, capsys):
    f = tmp_path / "run.yaml"
    f.write_bytes("\ufefftrain:\n  eval_interval: 0\n  progress: false\n".encode("utf-8"))
    rc = main(
        [
            "train",
            "--config",
            str(f),
            "--data",
            str(corpus),
            "--out",
            str(tmp_path / "o"),
            "--preset",
            "nano",
            "--max-iters",
            "1",
            "--train.device=cpu",
            "--train.eval_iters=1",
        ]
    )
    assert rc == 0, capsys.readouterr().err


def test_folder(tmp_path, corpus, capsys):
    d = tmp_path / "configs.yaml"
    d.mkdir()
    line = train_with_config(d, corpus, tmp_path / "o", capsys)
    assert "is a folder, not a file" in line


def test_symlink_loop(tmp_path, corpus, capsys):
    loop = tmp_path / "loop.yaml"
    try:
        os.symlink(loop, loop)
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links are not available here")
    line = train_with_config(loop, corpus, tmp_path / "o", capsys)
    assert "symbolic link loop" in line and "does not exist" not in line


def test_broken_symlink(tmp_path, corpus, capsys):
    link = tmp_path / "run.yaml"
    try:
        os.symlink(tmp_path / "gone.yaml", link)
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links are not available here")
    line = train_with_config(link, corpus, tmp_path / "o", capsys)
    assert "is a broken symbolic link" in line and "gone.yaml" in line


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path, corpus, capsys):
    fifo = tmp_path / "run.yaml"
    os.mkfifo(fifo)
    line = train_with_config(fifo, corpus, tmp_path / "o", capsys)  # opening it would block for ever
    assert "is not a regular file" in line


def test_a_path_through_a_file(tmp_path, corpus, capsys):
    (tmp_path / "file").write_text("x")
    line = train_with_config(tmp_path / "file" / "run.yaml", corpus, tmp_path / "o", capsys)
    assert "a part of the path is a file, not a folder" in line


def test_missing_file_still_says_so(tmp_path, corpus, capsys):
    line = train_with_config(tmp_path / "nope.yaml", corpus, tmp_path / "o", capsys)
    assert "does not exist" in line


def test_too_big(tmp_path, corpus, capsys):
    f = tmp_path / "run.yaml"
    with open(f, "wb") as handle:
        handle.truncate(C.MAX_CONFIG_BYTES + 1)  # sparse: no real disk use
    line = train_with_config(f, corpus, tmp_path / "o", capsys)
    assert "MiB; config files are text of a few lines" in line


def test_yaml_syntax_error_names_line_and_column(tmp_path, corpus, capsys):
    f = tmp_path / "run.yaml"
    f.write_text("train:\n  lr: 0.001\n  batch_size: [1, 2\nmodel:\n  embed_dim: 32\n", encoding="utf-8")
    line = train_with_config(f, corpus, tmp_path / "o", capsys)
    assert "is not valid YAML at line " in line and ", column " in line


def test_toml_syntax_error_names_line_and_column(tmp_path, corpus, capsys):
    f = tmp_path / "run.toml"
    f.write_text("[train]\nlr = \n", encoding="utf-8")
    line = train_with_config(f, corpus, tmp_path / "o", capsys)
    assert "is not valid TOML" in line and "line 2" in line


def test_unknown_suffix(tmp_path, corpus, capsys):
    f = tmp_path / "run.json"
    f.write_text("{}", encoding="utf-8")
    assert "use a .yaml, .yml or .toml file" in train_with_config(f, corpus, tmp_path / "o", capsys)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("- model\n- train\n", "must hold a table of sections (model:, train:), not a list"),
        ("just a string\n", "must hold a table of sections (model:, train:), not a str"),
        ("model: 5\n", "section 'model' must be a table of settings"),
        ("train: [1, 2]\n", "section 'train' must be a table of settings"),
        ("data: text\n", "section 'data' must be a table of settings"),
        ("1: 2\n", "section names must be text, got 1"),
        ("model:\n  1: 2\n", "unknown GPTConfig key(s): model.1"),
        ("model:\n  [a, b]: 2\n", "is not valid YAML at line 2, column 3: found unhashable key"),
        ("model:\n  null: 2\n", "unknown GPTConfig key(s): model.None"),
        ("train:\n  true: 1\n", "unknown TrainConfig key(s): train.True"),
        ("train:\n  lr: .nan\n", "train.lr: NaN is not a valid value"),
        ("train:\n  lr: .inf\n", "train.lr: inf is not a valid value; give a finite number"),
        ("train:\n  max_time: -.inf\n", "train.max_time: -inf is not a valid value"),
        ("model:\n  dropout: .nan\n", "model.dropout: NaN is not a valid value"),
        ("preset: [nano]\n", "preset must be a name such as nano"),
        ("optimizer:\n  lr: 1\n", "unknown section(s) optimizer"),
        ("train:\n  seed: -1\n", "train.seed must be from 0 to 4,294,967,295"),
        (
            "train:\n  max_iters: 100000000000000000000000000000000000000000000000\n",
            "train.max_iters must be from 0 to 10,000,000, got a 48-digit number",
        ),
    ],
)
def test_bad_structure_and_values(tmp_path, corpus, capsys, text, expected):
    f = tmp_path / "run.yaml"
    f.write_text(text, encoding="utf-8")
    line = train_with_config(f, corpus, tmp_path / "o", capsys)
    assert expected in line, line


def test_deeply_nested_yaml(tmp_path, corpus, capsys):
    f = tmp_path / "run.yaml"
    f.write_text("train: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    line = train_with_config(f, corpus, tmp_path / "o", capsys)
    assert "must be a table of settings" in line or "nested too deeply" in line


def test_resume_with_a_scalar_section_is_one_line(tmp_path, corpus, capsys):
    f = tmp_path / "run.yaml"
    f.write_text("model: 5\n", encoding="utf-8")
    line = train_with_config(f, corpus, tmp_path / "o", capsys, "--resume")
    assert "section 'model' must be a table of settings" in line


@pytest.mark.parametrize("objective", [["--objective", "mlm"], ["--task", "reverse"]])
def test_other_objectives_read_config_files_as_strictly(tmp_path, corpus, capsys, objective):
    f = tmp_path / "run.yaml"
    f.write_bytes(b"\x00binary")
    rc = main(["train", *objective, "--config", str(f), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "binary file" in err[0], err
    f.write_text("task: 5\ntrain: 7\n" if "--task" in objective else "data: 5\n", encoding="utf-8")
    rc = main(["train", *objective, "--config", str(f), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "must be a table of settings" in err[0], err


# --- an --out the operating system refuses ------------------------------------------------------


def _train(out, corpus, capsys, *extra) -> tuple[int, list[str]]:
    rc = main(
        [
            "train",
            "--data",
            str(corpus),
            "--out",
            str(out),
            "--preset",
            "nano",
            "--max-iters",
            "1",
            "--train.device=cpu",
            "--train.eval_iters=1",
            "--train.progress=false",
            *extra,
        ]
    )
    return rc, capsys.readouterr().err.strip().splitlines()


def test_out_under_proc_is_one_line(tmp_path, corpus, capsys):
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    rc, err = _train("/proc/attnlab-x", corpus, capsys)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("attnlab: error: cannot write into --out '/proc/attnlab-x'")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root (or Windows) may write anywhere")
def test_out_in_a_read_only_folder(tmp_path, corpus, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = _train(ro / "run", corpus, capsys)
    finally:
        ro.chmod(0o755)
    assert rc == 2 and len(err) == 1, err
    assert "Permission denied" in err[0]


def _erofs(*args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0]) if args else None)


def test_out_on_a_read_only_file_system_creating_the_folder(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: _erofs(self))
    monkeypatch.setattr(os, "makedirs", _erofs)
    rc, err = _train(tmp_path / "run", corpus, capsys)
    assert rc == 2 and len(err) == 1, err
    assert "Read-only file system (EROFS)" in err[0] and "--out" in err[0], err


def test_out_on_a_read_only_file_system_while_writing(tmp_path, corpus, capsys, monkeypatch):
    # The run folder was claimed, then the disk refuses the checkpoint (a disk remounted
    # read-only mid-run): the operating system's reason and its errno name, in one line.
    from attnlab import checkpoint as ckpt

    def refuse(folder, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))

    monkeypatch.setattr(ckpt, "save_training_state", refuse)
    rc, err = _train(tmp_path / "run", corpus, capsys)
    assert rc == 2 and len(err) == 1, err
    assert "Read-only file system" in err[0] and "EROFS" in err[0], err  # the reason and its errno name


def test_an_os_error_from_any_command_is_one_line_with_its_errno_name(tmp_path, capsys, monkeypatch):
    import attnlab.viz.positions as P

    def refuse(out, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(out))

    monkeypatch.setattr(P, "plot_positions", refuse)
    rc = main(["viz", "positions", "--out", str(tmp_path / "p.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0] == (
        f"attnlab: error: {str(tmp_path / 'p.png')!r}: Read-only file system (EROFS); "
        "choose a folder on a writable disk"
    )


# --- seeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", str(2**40), str(2**32), "1" * 60])
def test_train_seed_out_of_range(tmp_path, corpus, capsys, seed):
    rc, err = _train(tmp_path / "run", corpus, capsys, f"--seed={seed}")
    assert rc == 2 and len(err) == 1, err
    assert "--seed" in err[0]
    if len(seed) < 40:
        assert "0 to 4,294,967,295" in err[0]
    assert not (tmp_path / "run").exists()  # refused before the run folder was claimed


@pytest.mark.parametrize("flag", ["--train.seed=-1", "--train.seed=1099511627776"])
def test_train_seed_override_out_of_range(tmp_path, corpus, capsys, flag):
    rc, err = _train(tmp_path / "run", corpus, capsys, flag)
    assert rc == 2 and len(err) == 1, err
    assert "train.seed must be from 0 to 4,294,967,295" in err[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--checkpoint", "CKPT", "--seed", "-5"],
        ["generate", "--checkpoint", "CKPT", "--seed", str(2**40)],
        ["demo", "--seed", "-1", "--out", "OUT"],
        ["compare", "sequence", "--seed", "-1", "--out", "OUT"],
        ["viz", "embeddings", "--random-dims", "2", "--seed", str(2**33), "--out", "OUT.png"],
        ["probe", "--data", "amp", "--task", "seq-class", "--embedder", "onehot", "--out", "OUT", "--split-seed", "-2"],
    ],
)
def test_other_commands_refuse_bad_seeds(tmp_path, capsys, argv):
    argv = [a.replace("CKPT", str(tmp_path / "none")).replace("OUT", str(tmp_path / "out")) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "seed must be from 0 to 4,294,967,295" in err[0]
    assert not (tmp_path / "out").exists()


def test_generate_seed_plus_samples_beyond_the_range(tmp_path, capsys):
    rc = main(["generate", "--checkpoint", str(tmp_path / "none"), "--seed", str(2**32 - 1), "--num-samples", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "sample i uses seed + i" in err[0] and "at most 4,294,967,294" in err[0]
