"""What every `attnlab train` recipe does with its flags: settings in order, resume checks, the exit code.

Settings come from the preset, then `--config FILE` (sections model/train/data, ...), then
the dotted `--SECTION.FIELD=VALUE` overrides, then the explicit flags. Used by the causal
LM (`cli/lm.py`), `--objective mlm` (`cli/mlm.py`) and `--task` (`cli/seq2seq.py`); the
recipes themselves (`attnlab.train`) take the finished config dataclasses.

`args` is the `argparse.Namespace` of the `train` parser: `config`, `preset`, `max_iters`,
`seed`, `data`, `tokenizer`, `out` (and `force`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnlab.errors import ConfigError

SECTIONS = {"model", "train", "data"}

EXIT_INTERRUPTED = 130

FORCE_HELP = (
    "write into --out even if it holds files attnlab did not write "
    "(they are kept; one attnlab must replace is renamed NAME.orig)"
)


def add_force_flag(parser: Any) -> None:
    """Add `--force` (write into an --out that holds files attnlab did not write) to `parser`."""
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)


def collect_configs(
    args: Any,
    extra: list[str],
    model_class: Any,
    preset_default: str,
    sections: set[str] = SECTIONS,
    top_level: tuple[str, ...] = ("preset",),
    arch: str | None = None,
) -> tuple[Any, Any, Any, dict[str, dict[str, str]]]:
    """preset -> config file -> dotted overrides -> explicit flags, for model/train/data.

    Args:
        model_class: the model's config dataclass (built with `from_name(preset)` where it has presets).
        preset_default: the preset when neither --preset nor the config file names one.
        sections: the config file's and the dotted overrides' sections.
        top_level: keys the config file may hold beside its sections (e.g. preset, arch).
        arch: the architecture chosen with --arch (or the file's `arch`), named when a model key is unknown.
    Returns:
        (model config, TrainConfig, DataConfig, the raw dotted overrides).
    """
    from attnlab import config as C
    from attnlab.configs.data import DataConfig
    from attnlab.train.trainer import TrainConfig

    overrides, rest = C.parse_dotted_overrides(extra, sections)
    if rest:
        raise ConfigError(f"unrecognized arguments: {' '.join(rest)} (see attnlab train --help)")
    file_data: dict[str, Any] = {}
    if args.config:
        file_data = C.load_file(args.config)
        where = f"config file {args.config!r}"
        C.check_sections(file_data, sections | set(top_level), where=where)
        for name in sections:
            file_data[name] = C.file_section(file_data, name, where=where)
        if file_data.get("preset") is not None and not isinstance(file_data["preset"], str):
            raise ConfigError(f"{where}: preset must be a name such as nano, got {file_data['preset']!r:.60}")
    preset = args.preset or file_data.get("preset") or preset_default
    model = model_class.from_name(preset) if hasattr(model_class, "from_name") else model_class()
    try:
        model = C.replace(model, file_data.get("model", {}), section="model")
        model = C.replace(model, overrides.get("model", {}), section="model")
    except ConfigError as e:
        if arch is not None and str(e).startswith(f"unknown {model_class.__name__} key"):
            raise ConfigError(f"--arch {arch} has no such setting: {e}") from None
        raise
    train = C.from_dict(TrainConfig, file_data.get("train", {}), section="train")
    train = C.replace(train, overrides.get("train", {}), section="train")
    data = C.from_dict(DataConfig, file_data.get("data", {}), section="data")
    data = C.replace(data, overrides.get("data", {}), section="data")
    flags: dict[str, Any] = {}
    if args.max_iters is not None:
        flags["max_iters"] = args.max_iters
    if args.seed is not None:
        flags["seed"] = args.seed
    if flags:
        train = C.replace(train, flags, section="train")
    data_flags: dict[str, Any] = {}
    if args.data is not None:
        data_flags["source"] = args.data
    if args.tokenizer is not None:
        data_flags["tokenizer"] = args.tokenizer
    if data_flags:
        data = C.replace(data, data_flags, section="data")
    return model, train, data, overrides


def check_resume_agrees(
    args: Any, overrides: dict[str, dict[str, str]], model: Any, ignore: tuple[str, ...] = ("vocab_size",)
) -> None:
    """With --resume, accept model settings that agree with the checkpoint; refuse a real difference.

    The fields counted as given are those of an explicit --preset (or the config file's
    `preset`: all of its fields), the config file's `model` section and the --model.*
    overrides. `vocab_size` comes from the tokenizer, so a preset's placeholder is not
    compared (an explicit --model.vocab_size is).

    Raises:
        ConfigError: naming each field that differs, with the value given now and the saved one.
    """
    from attnlab import checkpoint as ckpt
    from attnlab import config as C
    from attnlab.errors import CheckpointError

    given: set[str] = set(overrides.get("model", {}))
    file_data = C.load_file(args.config) if args.config else {}
    given |= set((file_data.get("model") or {}) if isinstance(file_data.get("model"), dict) else {})
    if args.preset or file_data.get("preset"):
        given |= {f.name for f in dataclasses.fields(model) if f.name not in ignore}
    if not given:
        return
    try:
        saved = ckpt.read_metadata(args.out)["config"]
    except CheckpointError:
        return  # not a checkpoint: the recipe says so in its own words
    differ = []
    for name in sorted(given):
        if name not in saved or not hasattr(model, name):
            continue
        now = json.loads(json.dumps(C.to_dict(model)[name]))  # tuples and lists compare alike
        if now != saved[name]:
            differ.append(f"model.{name} is {now!r} now but {saved[name]!r} in the checkpoint")
    if differ:
        raise ConfigError(
            f"cannot resume {args.out!r} with another model: {'; '.join(differ)}; drop those flags "
            "(or make them match), or train a new run with another --out"
        )


def saved_run(out: str | os.PathLike) -> dict[str, Any] | None:
    """The settings a run folder was trained with (its run.json), or None when it has none."""
    run_json = Path(out) / "run.json"
    if not run_json.is_file():
        return None
    return json.loads(run_json.read_text(encoding="utf-8"))


def resumed_train(args: Any, train: Any, explicit: set[str], saved: dict[str, Any]) -> Any:
    """With --resume: the run's own TrainConfig (from `saved`, its run.json), then what was given now.

    Args:
        train: the TrainConfig built from this command line.
        explicit: the train fields given now (dotted overrides, ...); --max-iters and --seed are added.
    """
    from attnlab import config as C
    from attnlab.train.trainer import TrainConfig

    given = set(explicit)
    if args.max_iters is not None:
        given.add("max_iters")
    if args.seed is not None:
        given.add("seed")
    base = C.from_dict(TrainConfig, saved.get("train", {}), section="train")
    return C.replace(base, {k: getattr(train, k) for k in sorted(given)}, section="train")


def is_rank0() -> bool:
    """Whether this process prints (rank 0 of a `torchrun` job, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


def run_recipe(train: Callable[[], dict[str, Any]], print_results: Callable[[dict[str, Any]], None]) -> int:
    """Run a training recipe: its results printed (on rank 0), exit code 0; a stop by signal is 130."""
    from attnlab.train.trainer import TrainingInterrupted

    try:
        results = train()
    except TrainingInterrupted as e:
        print(f"attnlab: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if is_rank0():
        print_results(results)
    return 0
