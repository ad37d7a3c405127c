"""`attnlab train --objective mlm`: flags -> configs -> `attnlab.train.mlm.train_masked_lm`.

Called by `attnlab.cli.lm` (the `train` command); registers no command of its own.
"""

from __future__ import annotations

from typing import Any

from attnlab.cli.train_common import check_resume_agrees, collect_configs, resumed_train, run_recipe, saved_run
from attnlab.errors import ConfigError

SECTIONS = {"model", "train", "data", "mask"}


def run_training(args: Any, extra: list[str]) -> int:
    """`attnlab train --objective mlm ...`: flags -> configs -> `train_masked_lm`. Returns the exit code."""
    from attnlab import config as C
    from attnlab.configs.data import DataConfig
    from attnlab.models.encoder import EncoderConfig
    from attnlab.train.mlm import SEQUENCE_TOKENIZERS, MaskingConfig, train_masked_lm

    if getattr(args, "engine", "torch") != "torch":
        raise ConfigError("masked-LM training runs on the torch engine only; drop --engine numpy")
    # the tokenizer (flag, then --data.tokenizer, then the config file) picks the default preset
    kind = args.tokenizer or C.parse_dotted_overrides(extra, SECTIONS)[0].get("data", {}).get("tokenizer")
    if kind is None and args.config:
        kind = C.file_section(C.load_file(args.config), "data", where=f"config file {args.config!r}").get("tokenizer")
    preset_default = "protein-small" if kind in SEQUENCE_TOKENIZERS else "small"
    model, train, data, overrides = collect_configs(args, extra, EncoderConfig, preset_default, sections=SECTIONS)
    masking_data: dict[str, Any] = {}
    if args.config:
        masking_data = C.load_file(args.config).get("mask", {}) or {}
    masking = C.from_dict(MaskingConfig, masking_data, section="mask")
    masking = C.replace(masking, overrides.get("mask", {}), section="mask")
    if args.resume:
        check_resume_agrees(args, overrides, model)
        saved = saved_run(args.out)
        if saved is not None:  # the run's own settings, then what was given now
            train = resumed_train(args, train, set(overrides.get("train", {})), saved)
            if args.data is None and "data" in saved:  # same data unless another is given now
                data = C.replace(data, {"source": saved["data"].get("source", data.source)}, section="data")
            if args.tokenizer is None and "data" in saved:
                data = C.replace(data, {"tokenizer": saved["data"].get("tokenizer", data.tokenizer)}, section="data")
            masking = C.from_dict(MaskingConfig, saved.get("mask", {}), section="mask")
    elif args.data is None and data.source == DataConfig().source and data.tokenizer in SEQUENCE_TOKENIZERS:
        raise ConfigError(
            f"--tokenizer {data.tokenizer} needs sequence data: pass --data FILE.fasta|FILE.csv or --data amp"
        )
    return run_recipe(
        lambda: train_masked_lm(
            args.out,
            data=data,
            model=model,
            train=train,
            masking=masking,
            resume=args.resume,
            force=getattr(args, "force", False),
        ),
        lambda results: print_results(results, args.out),
    )


def print_results(results: dict[str, Any], out: str) -> None:
    """The two lines `attnlab train --objective mlm` ends with."""
    line = f"done: {results['step']} masked-LM steps in {results['train_seconds']:.1f} s"
    if results.get("val_loss") is not None:
        line += f"; validation loss {results['val_loss']:.4f}"
    accuracy = results.get("val_masked_accuracy")
    if accuracy is not None:
        line += f", masked-token accuracy {accuracy:.1%}"
    print(line)
    print(f"checkpoint and metrics: {out}")
