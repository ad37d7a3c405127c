"""Property tests: whatever a user types, every command ends with exit 0 or 2, never a traceback.

Hypothesis feeds generated values (text with unicode, whitespace, newlines and the
surrogate escapes undecodable bytes become; huge and negative whole numbers; floats with
nan, inf and 1e308; empty strings) to

  * every flag and positional argument of every command, discovered by walking
    `attnlab.cli.build_parser()` (so a new flag is covered without touching this file),
    one at a time, on top of a base command line that is valid and fast; and
  * every field of the config dataclasses that `attnlab train` reads (GPT, encoder,
    seq2seq, task, masking, train, data), as `--section.field=value`.

Keeping each example fast: the runs use the smallest models and a tiny corpus, and a work
budget stops a run that got past validation into long work (more optimizer steps, forward
passes, NumPy steps or pixels than any valid example here needs) by raising
`WorkBudgetReached`, which counts as a pass: the command accepted its input and was
working. The machine is said to have 512 MiB, so a model too big for it is refused by the
memory check instead of being allocated. The example counts are printed at the end of
the module (and kept in `COUNTS`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings  # the test extra installs it (pyproject.toml)
from hypothesis import strategies as st

from attnlab.cli import build_parser, main  # noqa: E402

# ATTNLAB_PROPERTY_SCALE=10 runs ten times the examples (a longer hunt; the default keeps the file near 60 s).
SCALE = max(0.1, float(os.environ.get("ATTNLAB_PROPERTY_SCALE", "1")))


def examples(n: int) -> int:
    return max(1, round(n * SCALE))


COUNTS: collections.Counter = collections.Counter()  # outcome -> examples, over the whole module
PER_TEST: collections.Counter = collections.Counter()  # test -> examples
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

CORPUS = "the quick brown fox jumps over the lazy dog.\n" * 30


class WorkBudgetReached(BaseException):
    """The command got past validation into more work than a property example may do."""


# --------------------------------------------------------------------------- values users type

_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
_SURROGATE_ESCAPES = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)  # undecodable argv bytes
TEXT = st.text(st.one_of(_CHARS, _SURROGATE_ESCAPES, st.sampled_from(" \t\n\r\x0b\x0c")), max_size=24)
INTS = st.one_of(
    st.integers(-20, 300),
    st.integers(),
    st.sampled_from([0, -1, 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63, 2**64, -(2**63), 10**40, 10**200]),
)
FLOATS = st.one_of(st.floats(), st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0, 1e-300, 0.5, 1e6]))
SPECIAL = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "nan",
        "-nan",
        "inf",
        "-inf",
        "NaN",
        "Infinity",
        "1e400",
        "-1e400",
        "1_000",
        "0x10",
        "٣",
        "None",
        "null",
        "true",
        "false",
        "[]",
        "{}",
        "[1, 2]",
        "1,2",
        "2,,3",
        "-",
        "--",
        "=",
        "a=b",
        "~",
        "/",
        ".",
        "..",
        "/dev/null",
        "/proc/self",
        "\U0001f4a5",
        "\t3\t",
        "3.0",
        "-0",
        "+7",
        "9" * 45,
        "1" * 5000,
        "x" * 300,
    ]
)
VALUES = st.one_of(INTS.map(str), FLOATS.map(repr), TEXT, SPECIAL)
# For a number field or flag: mostly numbers (still some text), so its ranges are probed.
NUMBERS = st.one_of(INTS.map(str), INTS.map(str), FLOATS.map(repr), FLOATS.map(repr), SPECIAL, TEXT)


def values_for(tp: Any):
    """The value strategy for a field type or an argparse `type=`."""
    import typing

    args = set(typing.get_args(tp)) | {tp}
    numeric = bool(args & {int, float}) or getattr(tp, "__name__", "") in (
        "whole number",
        "number",
        "seed",
        "int",
        "float",
    )
    return NUMBERS if numeric else VALUES


# --------------------------------------------------------------------------- the world the commands see


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny checkpoints of each kind, a corpus, a private working folder, and the work budget."""
    root = tmp_path_factory.mktemp("properties")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)  # relative paths a generated value names land here
    mp.setenv("ATTNLAB_OFFLINE", "1")
    mp.setenv("ATTNLAB_CACHE", str(root / "cache"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    corpus = root / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    labels = root / "labels.csv"  # a labelled task in the corpus's characters, for `finetune`
    labels.write_text("text,label\n" + "the quick fox,a\nthe lazy dog,b\n" * 4, encoding="utf-8")
    small = [
        "--max-iters",
        "2",
        "--train.device=cpu",
        "--train.eval_iters=1",
        "--train.progress=false",
        "--train.batch_size=2",
    ]
    assert (
        main(
            [
                "train",
                "--data",
                str(corpus),
                "--out",
                str(root / "gpt"),
                "--preset",
                "nano",
                *small,
                "--model.embed_dim=16",
                "--model.num_layers=1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--objective",
                "mlm",
                "--data",
                str(corpus),
                "--out",
                str(root / "enc"),
                "--preset",
                "mini",
                *small,
                "--model.embed_dim=16",
                "--model.num_layers=1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--task",
                "reverse",
                "--out",
                str(root / "s2s"),
                *small,
                "--model.embed_dim=16",
                "--model.num_heads=2",
                "--model.num_encoder_layers=1",
                "--model.num_decoder_layers=1",
                "--task.num_eval_examples=4",
            ]
        )
        == 0
    )
    import json
    import shutil

    from attnlab.pretrained import file_table

    kit = root / "kit"  # a build folder of `attnlab room build`: the gpt as a pre-trained model
    shutil.copytree(root / "gpt", kit / "demo-gpt")
    (kit / "demo-gpt" / "room.json").write_text(
        json.dumps({"format": "attnlab-room-model", "name": "demo-gpt", "files": file_table(kit / "demo-gpt")})
    )
    from attnlab.room import kit as room_kit

    packed = root / "packed-kit"  # an `attnlab room pack` kit, for `room check`
    (packed / "notebooks").mkdir(parents=True)
    (packed / "notebooks" / "00.ipynb").write_text("{}")
    room_kit.write_manifest(packed, platforms=["linux-x86_64"], pythons=["3.11"])
    with _work_budget(mp):
        yield {
            "root": root,
            "kit": str(kit),
            "packed_kit": str(packed),
            "corpus": str(corpus),
            "labels": str(labels),
            "gpt": str(root / "gpt"),
            "enc": str(root / "enc"),
            "s2s": str(root / "s2s"),
        }
    mp.undo()


BUDGET = {
    "optimizer_steps": 6,
    "module_calls": 30_000,
    "numpy_steps": 6,
    "numpy_batches": 40,
    "numpy_tokens": 64,
    "pixels": 12_000_000,
    "pip_runs": 0,  # `room pack` runs pip (downloads): a valid pack stops at its first pip call
}
# Commands whose valid runs are slow (several models, many figures): a smaller budget for them.
HEAVY = {
    ("compare", "mnist"): {"optimizer_steps": 1},
    ("compare", "sequence"): {"optimizer_steps": 1},
    ("compare", "points"): {"optimizer_steps": 1},
    ("compare", "objectives"): {"optimizer_steps": 1},
    ("interp", "induction"): {"optimizer_steps": 4},
    ("scale",): {"optimizer_steps": 1},
    ("transfer",): {"optimizer_steps": 1},
    ("demo",): {"optimizer_steps": 1},
    ("room", "build"): {"optimizer_steps": 1},
    ("figures", "foundations"): {"pixels": 200_000},
}
_used: collections.Counter = collections.Counter()
_budget: dict[str, int] = dict(BUDGET)


def _spend(what: str, amount: int = 1) -> None:
    _used[what] += amount
    if _used[what] > _budget[what]:
        raise WorkBudgetReached(what)


@contextlib.contextmanager
def _work_budget(mp: pytest.MonkeyPatch):
    import matplotlib.figure
    import torch
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from attnlab.models import memory
    from attnlab.scratch.gpt import NumpyGPT
    from attnlab.train.numpy_engine import NumpyEngine

    mp.setattr(memory, "device_memory", lambda device: (512 * 2**20, "available memory"))
    hooks = [
        register_optimizer_step_pre_hook(lambda opt, args, kwargs: _spend("optimizer_steps")),
        torch.nn.modules.module.register_module_forward_pre_hook(lambda module, args: _spend("module_calls")),
    ]
    train_step, eval_loss, generate = NumpyEngine.train_step, NumpyEngine.eval_loss, NumpyGPT.generate
    save = matplotlib.figure.Figure.savefig

    def numpy_train_step(self, micro_batches, lr):
        _spend("numpy_steps")
        _spend("numpy_batches", len(micro_batches))
        return train_step(self, micro_batches, lr)

    def numpy_eval_loss(self, batches):
        _spend("numpy_batches", len(batches))
        return eval_loss(self, batches)

    def numpy_generate(self, ids, max_new_tokens, *args, **kwargs):
        _spend("numpy_tokens", int(max_new_tokens))
        return generate(self, ids, max_new_tokens, *args, **kwargs)

    def savefig(self, *args, **kwargs):
        dpi = kwargs.get("dpi") or self.dpi
        width, height = self.get_size_inches()
        _spend("pixels", int(width * dpi) * int(height * dpi))
        return save(self, *args, **kwargs)

    mp.setattr(NumpyEngine, "train_step", numpy_train_step)
    mp.setattr(NumpyEngine, "eval_loss", numpy_eval_loss)
    mp.setattr(NumpyGPT, "generate", numpy_generate)
    mp.setattr(matplotlib.figure.Figure, "savefig", savefig)
    from attnlab.room import kit as room_kit

    mp.setattr(room_kit, "run_pip", lambda args, what: _spend("pip_runs"))  # never download
    import attnlab.cli.app as app_cli

    mp.setattr(app_cli, "run_child", lambda command, env=None, grace=None: 0)  # never start a server
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = [
        "",
        f"cli properties: {sum(PER_TEST.values())} examples in all; "
        + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())),
    ]
    lines += [f"  {name}: {n}" for name, n in sorted(PER_TEST.items())]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:  # pragma: no cover
                print(line)


def run_cli(argv: list[str], capsys, test: str, budget: dict[str, int] | None = None) -> None:
    """Run `attnlab ARGV`; assert exit 0 or 2 (one `attnlab...` line last on stderr), or budget reached."""
    _used.clear()
    _budget.clear()
    _budget.update(BUDGET, **(budget or {}))
    PER_TEST[test] += 1
    try:
        rc = main(argv)
    except SystemExit as e:  # main returns codes itself, but an exit 0 / 2 is still a clean end
        rc = e.code if isinstance(e.code, int) else 2
    except WorkBudgetReached as e:
        COUNTS[f"budget ({e.args[0]})"] += 1
        capsys.readouterr()
        return
    out = capsys.readouterr()
    assert rc in (0, 2), f"exit {rc} for {argv!r}: {out.err[-2000:]}"
    assert "Traceback" not in out.err, f"{argv!r}: {out.err[-3000:]}"
    if rc == 2:
        last = out.err.strip().splitlines()[-1] if out.err.strip() else ""
        assert last.startswith(("attnlab", "usage:")), (
            f"{argv!r}: the error is not one attnlab line: {out.err[-2000:]!r}"
        )
    COUNTS[f"exit {rc}"] += 1


# --------------------------------------------------------------------------- every flag, discovered


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + (name,))


def _exclusive_with(parser: argparse.ArgumentParser, action: argparse.Action) -> set[str]:
    """Option strings that may not be given together with `action` (argparse mutually exclusive groups)."""
    out: set[str] = set()
    for group in parser._mutually_exclusive_groups:
        if action in group._group_actions:
            for other in group._group_actions:
                if other is not action:
                    out.update(other.option_strings)
    return out


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._SubParsersAction, argparse._HelpAction, argparse._VersionAction))
    ]


PARSERS = dict(_walk(build_parser()))
FAST_TRAIN = [
    "--train.device=cpu",
    "--train.eval_iters=1",
    "--train.progress=false",
    "--train.batch_size=2",
    "--train.eval_interval=0",
]


def base_command(path: tuple[str, ...], w: dict[str, Any], out: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """A valid, fast command line for `path`: ({flag: value | [values] | True}, positionals, dotted extras).

    Raises:
        KeyError: for a command without one (`test_every_command_has_a_base_command_line` names it).
    """
    o, tiny = out, "20"  # tiny: the smallest dpi, for figures
    return {
        (): ({}, ["data", "list"], []),
        ("demo",): ({"--data": w["corpus"], "--out": o, "--seconds": "0.1", "--seed": "1"}, [], []),
        ("train",): ({"--data": w["corpus"], "--out": o, "--preset": "nano", "--max-iters": "1"}, [], FAST_TRAIN),
        ("generate",): ({"--checkpoint": w["gpt"], "--max-new-tokens": "3", "--prompt": "the "}, [], []),
        ("eval",): ({"--checkpoint": w["gpt"], "--data": w["corpus"]}, [], []),
        ("convert",): ({"--to-hf": w["gpt"], "--out": o}, [], []),
        ("embed",): ({"--checkpoint": w["enc"], "--text": ["the fox"]}, [], []),
        ("translate",): ({"--checkpoint": w["s2s"], "--text": ["abc"]}, [], []),
        ("figures",): ({}, [], []),
        ("figures", "foundations"): ({"--out": o, "--only": ["activations"], "--dpi": tiny}, [], []),
        ("compare",): ({}, [], []),
        ("compare", "mnist"): (
            {
                "--out": o,
                "--quick": True,
                "--models": "mlp",
                "--device": "cpu",
                "--epochs": "1",
                "--no-progress": True,
                "--data": "digits",
                "--num-train": "50",
                "--num-test": "20",
                "--no-save-models": True,
            },
            [],
            [],
        ),
        ("compare", "sequence"): (
            {
                "--out": o,
                "--quick": True,
                "--models": "rnn",
                "--device": "cpu",
                "--epochs": "1",
                "--steps-per-epoch": "1",
                "--timing-lengths": "none",
                "--no-progress": True,
                "--seq-len": "8",
                "--no-save-models": True,
            },
            [],
            [],
        ),
        ("compare", "points"): (
            {
                "--out": o,
                "--quick": True,
                "--models": "mlp",
                "--device": "cpu",
                "--epochs": "1",
                "--no-progress": True,
                "--num-train": "16",
                "--num-test": "8",
                "--no-save-models": True,
            },
            [],
            [],
        ),
        ("compare", "objectives"): (
            {
                "--out": o,
                "--quick": True,
                "--objectives": "clm",
                "--seeds": "0",
                "--tokens": "512",
                "--device": "cpu",
                "--no-progress": True,
            },
            [],
            [],
        ),
        ("scale",): (
            {
                "--out": o,
                "--quick": True,
                "--data": w["corpus"],
                "--sizes": "1x16,1x32",
                "--tokens": "512,1024,2048",
                "--device": "cpu",
                "--bootstrap": "2",
                "--no-progress": True,
                "--no-figures": True,
            },
            [],
            [],
        ),
        ("transfer",): (
            {
                "--out": o,
                "--quick": True,
                "--source": w["corpus"],
                "--target": w["corpus"],
                "--target-sizes": "200",
                "--size": "1x16",
                "--pretrain-tokens": "256",
                "--finetune-steps": "1",
                "--device": "cpu",
                "--no-progress": True,
                "--no-figures": True,
            },
            [],
            [],
        ),
        ("finetune",): (
            {
                "--checkpoint": w["enc"],
                "--data": w["labels"],
                "--method": "linear",
                "--out": o,
                "--steps": "1",
                "--device": "cpu",
                "--no-progress": True,
            },
            [],
            [],
        ),
        ("probe",): (
            {
                "--data": "amp",
                "--task": "seq-class",
                "--embedder": "onehot",
                "--out": o,
                "--seeds": "1",
                "--max-sequences": "30",
                "--no-cache": True,
                "--no-save-probes": True,
                "--no-progress": True,
            },
            [],
            [],
        ),
        ("viz",): ({}, [], []),
        ("viz", "attention"): (
            {"--checkpoint": w["gpt"], "--text": "the fox", "--out": o + ".png", "--dpi": tiny},
            [],
            [],
        ),
        ("interp",): ({}, [], []),
        ("interp", "cache"): ({"--checkpoint": w["gpt"], "--text": "the fox", "--out": o}, [], []),
        ("interp", "patch"): (
            {
                "--checkpoint": w["gpt"],
                "--clean": "the fox",
                "--corrupted": "fox the",
                "--answer": "o",
                "--wrong": "t",
                "--out": o,
                "--dpi": tiny,
            },
            [],
            [],
        ),
        ("interp", "ablate"): (
            {"--checkpoint": w["gpt"], "--text": "the fox", "--max-new-tokens": "2", "--out": o, "--dpi": tiny},
            [],
            [],
        ),
        ("interp", "attribute"): ({"--checkpoint": w["gpt"], "--text": "the fox", "--out": o, "--dpi": tiny}, [], []),
        ("interp", "heads"): ({"--checkpoint": w["gpt"], "--text": "the fox", "--out": o, "--dpi": tiny}, [], []),
        ("interp", "induction"): ({"--out": o, "--quick": True, "--steps": "2", "--no-figures": True}, [], []),
        ("viz", "alignment"): ({"--checkpoint": w["s2s"], "--text": "abc", "--out": o + ".png", "--dpi": tiny}, [], []),
        ("viz", "positions"): ({"--out": o + ".png", "--positions": "16", "--dim": "8", "--dpi": tiny}, [], []),
        ("viz", "embeddings"): (
            {"--random-dims": ["2", "8"], "--model": w["enc"], "--out": o + ".png", "--dpi": tiny},
            [],
            [],
        ),
        ("viz", "activations"): ({"--out": o + ".png", "--dpi": tiny}, [], []),
        ("viz", "curves"): ({"--out": o + ".png", "--dpi": tiny}, [w["gpt"]], []),
        ("app",): ({"--runs-dir": o}, [], []),
        ("data",): ({}, [], []),
        ("data", "list"): ({}, [], []),
        ("data", "fetch"): ({}, ["shakespeare"], []),
        ("data", "import"): ({}, ["mnist", w["corpus"]], []),
        ("doctor",): ({"--no-probe": True}, [], []),
        ("room", "build"): ({"--out": o, "--quick": True, "--only": "seq2seq-reverse"}, [], []),
        ("room", "install"): ({}, [w["kit"]], []),
        ("room",): ({}, [], []),
        ("room", "pack"): ({"--out": o, "--platform": "linux-x86_64", "--python": "3.11"}, [], []),
        ("room", "check"): ({}, [w["packed_kit"]], []),
    }[path]


def test_every_command_has_a_base_command_line(world):
    for path in PARSERS:
        flags, _, _ = base_command(path, world, "out")  # KeyError: add the command to base_command()
        known = {s for a in _arguments(PARSERS[path]) for s in a.option_strings}
        assert set(flags) <= known, (path, set(flags) - known)


CASES = [(path, action.dest) for path, parser in PARSERS.items() for action in _arguments(parser)]
CHEAP = [c for c in CASES if c[0] not in HEAVY]
SLOW = [c for c in CASES if c[0] in HEAVY]

# Values a user plausibly gives alongside the flag under test (to reach combinations).
PLAUSIBLE = st.sampled_from(["0", "1", "2", "3", "8", "16", "-1", "0.5", "1e-3", "true", "false", "none", "x"])


def _argv(path, flags: dict[str, Any], positionals: list[str], extras: list[str]) -> list[str]:
    argv = list(path)
    for flag, value in flags.items():
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, *value]
        else:
            argv.append(f"{flag}={value}")
    if path == ():  # the top-level options come before the command (`data list`)
        return argv + positionals
    return argv + positionals + extras


def _draw_value(action: argparse.Action, data, values=VALUES) -> Any:
    """A generated value (or list of values) for `action`, mixing its choices with anything at all."""
    if values is VALUES:
        values = values_for(action.type)
    one = values if not action.choices else st.one_of(st.sampled_from(sorted(map(str, action.choices))), values)
    if action.nargs in ("*", "+") or isinstance(action.nargs, int) and action.nargs > 1:
        return data.draw(st.lists(one, min_size=0 if action.nargs == "*" else 1, max_size=4), label=action.dest)
    if action.nargs == 0:  # store_true / store_false: given, or given a value it cannot take
        return data.draw(
            st.one_of(st.just(True), VALUES) if values is not PLAUSIBLE else st.just(True), label=action.dest
        )
    return data.draw(one, label=action.dest)


def _set(parser, flags: dict[str, Any], positionals: list[str], action: argparse.Action, value: Any) -> list[str]:
    """Put `value` for `action` into the command line (replacing the base's, dropping what excludes it)."""
    if not action.option_strings:  # a positional argument: replace the base's
        index = [a for a in _arguments(parser) if not a.option_strings].index(action)
        values = [str(v) for v in (value if isinstance(value, list) else [value])]
        return positionals[:index] + values + positionals[index + 1 :]
    for other in set(action.option_strings) | _exclusive_with(parser, action):
        flags.pop(other, None)
    flags[max(action.option_strings, key=len)] = value
    return positionals


def _flag_example(world, capsys, path, dest, data) -> None:
    parser = PARSERS[path]
    actions = _arguments(parser)
    action = next(a for a in actions if a.dest == dest)
    out = tempfile.mkdtemp(dir=world["root"]) + "/out"
    flags, positionals, extras = base_command(path, world, out)
    flags, positionals = dict(flags), list(positionals)
    if path == ("train",) and dest == "task":
        flags.pop("--data", None), flags.pop("--preset", None)
    if path == ("train",) and dest == "objective":
        flags.pop("--preset", None)
    # Sometimes a second flag of the same command, with a plausible value: combinations fail too.
    others = [a for a in actions if a is not action and a.option_strings]
    if others and data.draw(st.booleans(), label="second flag"):
        other = data.draw(st.sampled_from(others), label="other")
        if not (set(other.option_strings) & _exclusive_with(parser, action)):
            positionals = _set(parser, flags, positionals, other, _draw_value(other, data, PLAUSIBLE))
    positionals = _set(parser, flags, positionals, action, _draw_value(action, data))
    run_cli(_argv(path, flags, positionals, extras), capsys, "flags", HEAVY.get(path))


@pytest.mark.parametrize("path, dest", CHEAP, ids=[f"{' '.join(p) or 'attnlab'}:{d}" for p, d in CHEAP])
@settings(max_examples=examples(3), **SETTINGS)
@given(data=st.data())
def test_every_flag_takes_any_value_without_a_traceback(world, capsys, path, dest, data):
    _flag_example(world, capsys, path, dest, data)


@pytest.mark.parametrize("path, dest", SLOW, ids=[f"{' '.join(p)}:{d}" for p, d in SLOW])
@settings(max_examples=examples(2), **SETTINGS)
@given(data=st.data())
def test_every_flag_of_the_slow_commands_takes_any_value(world, capsys, path, dest, data):
    _flag_example(world, capsys, path, dest, data)


# --------------------------------------------------------------------------- every config field


def _config_sections() -> dict[str, dict[str, type]]:
    from attnlab.data.seq2seq_tasks import TaskConfig
    from attnlab.models.encoder import EncoderConfig
    from attnlab.models.gpt_config import GPTConfig
    from attnlab.models.seq2seq import Seq2SeqConfig
    from attnlab.train.mlm import MaskingConfig
    from attnlab.train.recipes import DataConfig
    from attnlab.train.trainer import TrainConfig

    return {
        "gpt": {"model": GPTConfig, "train": TrainConfig, "data": DataConfig},
        "mlm": {"model": EncoderConfig, "mask": MaskingConfig, "data": DataConfig},
        "task": {"model": Seq2SeqConfig, "task": TaskConfig},
    }


SECTIONS = _config_sections()
CONFIG_CASES = [
    (objective, section, f.name)
    for objective, classes in SECTIONS.items()
    for section, cls in classes.items()
    for f in dataclasses.fields(cls)
]


def _plausible_field_value(cls: type, name: str):
    """Values a user plausibly sets a field to: its Literal choices, or small numbers and words."""
    import typing

    from attnlab.config import field_types

    tp = field_types(cls)[name]
    choices = [
        str(c)
        for arg in (typing.get_args(tp) or (tp,))
        for c in typing.get_args(arg)
        if typing.get_origin(arg) is typing.Literal
    ]
    if typing.get_origin(tp) is typing.Literal:
        choices = [str(c) for c in typing.get_args(tp)]
    return st.sampled_from(choices) if choices else PLAUSIBLE


@pytest.mark.parametrize("objective, section, field", CONFIG_CASES, ids=[f"{o}:{s}.{f}" for o, s, f in CONFIG_CASES])
@settings(max_examples=examples(3), **SETTINGS)
@given(data=st.data())
def test_every_config_field_takes_any_value_without_a_traceback(world, capsys, objective, section, field, data):
    out = tempfile.mkdtemp(dir=world["root"]) + "/out"
    fast = {
        "train.device": "cpu",
        "train.eval_iters": "1",
        "train.progress": "false",
        "train.batch_size": "2",
        "train.eval_interval": "0",
        "train.max_iters": "1",
    }
    head = ["train", "--out", out]
    if objective == "gpt":  # baby: rotary positions, so rope_base and head sizes matter
        head += ["--data", world["corpus"], "--preset", "baby"]
        fast.update({"model.embed_dim": "16", "model.num_layers": "1", "model.max_seq_len": "16"})
    elif objective == "mlm":
        head += ["--objective", "mlm", "--data", world["corpus"], "--preset", "mini"]
        fast.update({"model.embed_dim": "16", "model.num_layers": "1"})
    else:
        head += ["--task", "reverse"]
        fast.update(
            {
                "model.embed_dim": "16",
                "model.num_heads": "2",
                "model.num_encoder_layers": "1",
                "model.num_decoder_layers": "1",
                "task.num_eval_examples": "4",
            }
        )
    if section == "data" and field in ("source", "tokenizer"):
        head = [a for i, a in enumerate(head) if a != "--data" and head[i - 1] != "--data"]
    settings_ = dict(fast)
    # Sometimes a second field of the same objective, with a plausible value: combinations fail too.
    if data.draw(st.booleans(), label="second field"):
        o_section, o_field = data.draw(
            st.sampled_from([(s, f) for o, s, f in CONFIG_CASES if o == objective]), label="other field"
        )
        settings_[f"{o_section}.{o_field}"] = data.draw(
            _plausible_field_value(SECTIONS[objective][o_section], o_field), label="other value"
        )
    from attnlab.config import field_types

    settings_[f"{section}.{field}"] = data.draw(
        values_for(field_types(SECTIONS[objective][section])[field]), label="value"
    )
    run_cli(head + [f"--{k}={v}" for k, v in settings_.items()], capsys, "config fields")


# --------------------------------------------------------------------------- config files

_FILE_TEXT = st.text(_CHARS, max_size=12)
_SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, _FILE_TEXT)
_NESTED = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_FILE_TEXT, inner, max_size=3)),
    max_leaves=6,
)


def _section(objective: str, name: str):
    classes = SECTIONS[objective]
    keys = [f.name for f in dataclasses.fields(classes[name])] if name in classes else []
    key = st.one_of(st.sampled_from(keys), _FILE_TEXT) if keys else _FILE_TEXT
    return st.one_of(st.dictionaries(key, st.one_of(_SCALARS, _NESTED), max_size=3), _NESTED)


@st.composite
def config_documents(draw, objective: str):
    """A config file's bytes: mostly YAML of sections (right and wrong), sometimes any bytes at all."""
    import yaml

    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    names = ["model", "train", "data", "task", "mask", "preset", "optimizer"]
    doc = draw(
        st.dictionaries(
            st.one_of(st.sampled_from(names), INTS, _FILE_TEXT),
            st.deferred(lambda: st.one_of(_SCALARS, _section(objective, "model"), _section(objective, "train"))),
            max_size=4,
        )
    )
    for name in names[:5]:  # and sections with fields of the right names, with anything in them
        if draw(st.booleans()):
            doc[name] = draw(_section(objective, name))
    if draw(st.integers(0, 4)) == 0:
        doc = draw(_NESTED)  # a top level that is not a table
    text = yaml.safe_dump(doc, allow_unicode=True)
    return text.encode("utf-8") if draw(st.integers(0, 5)) else text.encode("utf-16")


@settings(max_examples=examples(40), **SETTINGS)
@given(data=st.data())
def test_any_config_file(world, capsys, data):
    objective = data.draw(st.sampled_from(sorted(SECTIONS)), label="objective")
    suffix = data.draw(st.sampled_from([".yaml", ".yml", ".toml"]), label="suffix")
    folder = Path(tempfile.mkdtemp(dir=world["root"]))
    path = folder / f"run{suffix}"
    path.write_bytes(data.draw(config_documents(objective), label="file"))
    head = {
        "gpt": ["--data", world["corpus"], "--preset", "nano"],
        "mlm": ["--objective", "mlm", "--data", world["corpus"], "--preset", "mini"],
        "task": ["--task", "reverse"],
    }[objective]
    run_cli(
        ["train", "--config", str(path), "--out", str(folder / "out"), *head, *FAST_TRAIN, "--max-iters", "1"],
        capsys,
        "config files",
    )


# --------------------------------------------------------------------------- anything at all

ARGV_WORDS = st.one_of(
    st.sampled_from(sorted({p[0] for p in PARSERS if p}) + ["mnist", "sequence", "foundations", "attention", "list"]),
    st.sampled_from(sorted({s for parser in PARSERS.values() for a in _arguments(parser) for s in a.option_strings})),
    VALUES,
)


@settings(max_examples=examples(80), **SETTINGS)
@given(argv=st.lists(ARGV_WORDS, max_size=6))
def test_any_command_line_at_all(world, capsys, argv):
    run_cli(argv, capsys, "any argv")


def test_the_examples_ran():
    # Runs last in this module (pytest keeps file order): every property ran its examples.
    assert PER_TEST["flags"] >= len(CASES)
    assert PER_TEST["config fields"] >= len(CONFIG_CASES)
    assert PER_TEST["any argv"] >= examples(80) // 2
    assert PER_TEST["config files"] >= examples(40) // 2
