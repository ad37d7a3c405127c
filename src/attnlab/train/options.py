"""Training settings from run options: preset -> config file -> dotted overrides -> flags.

Shared by every training recipe that the command line starts (`attnlab train` for the
causal LM in `cli/lm.py`, `--objective mlm` in `train/mlm.py`, `--task` in
`train/seq2seq.py`). It lives in `train/`, not `cli/`, so the recipes never import the
CLI (README, "Design": nothing imports `cli` or `app`); `attnlab.cli.lm` re-exports it.

`args` is any object with the attributes the CLI's `train` parser defines (an
`argparse.Namespace`): `config`, `preset`, `max_iters`, `seed`, `data`, `tokenizer` and
`out`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from attnlab.errors import ConfigError

SECTIONS = {"model", "train", "data"}


def collect_configs(args: Any, extra: list[str], model_class: Any, preset_default: str,
                    sections: set[str] = SECTIONS) -> tuple[Any, Any, Any, dict[str, dict[str, str]]]:
    """preset -> config file -> dotted overrides -> explicit flags, for model/train/data.

    Returns:
        (model config, TrainConfig, DataConfig, the raw dotted overrides).
    """
    from attnlab import config as C
    from attnlab.train.recipes import DataConfig
    from attnlab.train.trainer import TrainConfig

    overrides, rest = C.parse_dotted_overrides(extra, sections)
    if rest:
        raise ConfigError(f"unrecognized arguments: {' '.join(rest)} (see attnlab train --help)")
    file_data: dict[str, Any] = {}
    if args.config:
        file_data = C.load_file(args.config)
        where = f"config file {args.config!r}"
        C.check_sections(file_data, sections | {"preset"}, where=where)
        for name in sections:
            file_data[name] = C.file_section(file_data, name, where=where)
        if file_data.get("preset") is not None and not isinstance(file_data["preset"], str):
            raise ConfigError(f"{where}: preset must be a name such as nano, got {file_data['preset']!r:.60}")
    preset = args.preset or file_data.get("preset") or preset_default
    model = model_class.from_name(preset) if hasattr(model_class, "from_name") else model_class()
    model = C.replace(model, file_data.get("model", {}), section="model")
    model = C.replace(model, overrides.get("model", {}), section="model")
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


def check_resume_agrees(args: Any, overrides: dict[str, dict[str, str]], model: Any,
                        ignore: tuple[str, ...] = ("vocab_size",)) -> None:
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
