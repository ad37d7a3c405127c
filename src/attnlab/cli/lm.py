"""`attnlab demo | train | generate | eval`: language models from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from attnlab import limits
from attnlab.cli.train_common import (  # noqa: F401 - SECTIONS re-exported
    SECTIONS,
    add_force_flag,
    check_resume_agrees,
    collect_configs,
    is_rank0,
    resumed_train,
    run_recipe,
    saved_run,
)
from attnlab.configs.sampling import DEFAULT_TEMPERATURE
from attnlab.errors import ConfigError
from attnlab.limits import SEED_HELP, float_arg, int_arg, seed_arg
from attnlab.models import registry


def _arch_choices() -> list[str]:
    return list(registry.model_types("causal_lm"))


def _arch_help(what: str) -> str:
    return (
        f"causal language model to {what}: {', '.join(_arch_choices())} "
        f"(default {registry.default_model_type('causal_lm')}; --model.* sets the fields of its config)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train a small GPT on the embedded corpus (~2 min), print samples, write plots",
        description="Train the `baby` GPT (4 layers, 128 dims, context 64) on a corpus for about "
        "--seconds, then print samples at two temperatures and write loss_curve.png and "
        "attention.png into the run folder.",
    )
    p.add_argument("--data", default=None, help="corpus name (pydoc [default], shakespeare) or a UTF-8 text file")
    p.add_argument("--out", default=None, help="run folder (default: runs/demo-TIMESTAMP)")
    add_force_flag(p)
    p.add_argument(
        "--seconds",
        type=float_arg(0.0, limits.MAX_SECONDS, low_open=True),
        default=120.0,
        help=f"training time budget in seconds, more than 0 and at most {limits.MAX_SECONDS:,.0f} "
        "(a week; default 120)",
    )
    p.add_argument("--seed", type=seed_arg, default=1337, help=f"random seed, {SEED_HELP} (default 1337)")
    p.add_argument(
        "--arch",
        choices=_arch_choices(),
        default=registry.default_model_type("causal_lm"),
        help=_arch_help("train (its `baby` preset)"),
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "train",
        help="train a model (GPT language model; seq2seq tasks; masked-LM encoders)",
        description="Train a GPT on a text corpus (default), a seq2seq model on a generated task "
        "(--task), or an encoder with masked-LM (--objective mlm). The run folder --out becomes a "
        "checkpoint (config.json, model.safetensors, tokenizer, training state) with metrics.jsonl "
        "and results.json. Settings: --preset, then --config FILE (sections model/train/data), "
        "then --model.FIELD=V / --train.FIELD=V / --data.FIELD=V, then the explicit flags.",
    )
    p.add_argument("--data", default=None, help="corpus name (pydoc, shakespeare) or a text file (default: pydoc)")
    p.add_argument("--out", required=True, help="run folder (becomes the checkpoint)")
    add_force_flag(p)
    p.add_argument(
        "--preset",
        default=None,
        help="model size preset (GPT: nano, baby [default], small; MLM encoder: mini, small [default], protein-small [default for --tokenizer protein], bert-base, esm2-8m; seq2seq: see --task)",
    )
    p.add_argument(
        "--max-iters",
        type=int_arg(1, limits.MAX_ITERS),
        default=None,
        help=f"optimizer steps (train.max_iters), 1 to {limits.MAX_ITERS:,}",
    )
    p.add_argument("--tokenizer", default=None, help="char [default], word, bpe (protein, dna for sequences)")
    p.add_argument("--config", default=None, help="YAML or TOML file with model/train/data sections")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--seed", type=seed_arg, default=None, help=f"random seed (train.seed), {SEED_HELP}")
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch", help="implementation to train with")
    p.add_argument(
        "--objective",
        choices=["clm", "mlm"],
        default="clm",
        help="clm: next-token GPT [default]; mlm: masked-LM encoder",
    )
    p.add_argument(
        "--arch",
        choices=_arch_choices(),
        default=None,
        help=_arch_help("train with --objective clm") + "; a config file may set it as `arch`; "
        "--resume continues the checkpoint's own",
    )
    p.add_argument("--task", default=None, help="train a seq2seq model on a generated task (e.g. reverse)")
    p.add_argument(
        "--model",
        default=None,
        metavar="{rnn,rnn-bahdanau,rnn-luong,transformer}",
        help="with --task: the encoder-decoder (transformer [default]; rnn: no attention; "
        "rnn-bahdanau: additive attention; rnn-luong: multiplicative attention)",
    )
    p.set_defaults(func=cmd_train, accepts_extra=True)

    p = sub.add_parser(
        "generate",
        help="generate text from a GPT checkpoint",
        description="Generate text from a trained GPT checkpoint.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (a run folder of `attnlab train`)")
    p.add_argument("--prompt", default="", help="text to continue (default: empty, start of a paragraph)")
    p.add_argument(
        "--max-new-tokens",
        type=int_arg(0, limits.MAX_NEW_TOKENS),
        default=200,
        help=f"tokens to generate, 0 to {limits.MAX_NEW_TOKENS:,} (default 200)",
    )
    p.add_argument(
        "--temperature",
        type=float_arg(high=limits.MAX_TEMPERATURE),
        default=DEFAULT_TEMPERATURE,
        help=f"<= 0 means greedy; else {limits.MIN_TEMPERATURE:g} to {limits.MAX_TEMPERATURE:,.0f} "
        f"(default {DEFAULT_TEMPERATURE:g})",
    )
    p.add_argument(
        "--top-k",
        type=int_arg(1, limits.MAX_TOP_K),
        default=None,
        help=f"sample only from the k most likely tokens, 1 to {limits.MAX_TOP_K:,}",
    )
    p.add_argument(
        "--top-p",
        type=float_arg(0.0, 1.0, low_open=True),
        default=None,
        help="nucleus sampling: smallest set with probability >= p, more than 0 and at most 1",
    )
    p.add_argument(
        "--seed",
        type=seed_arg,
        default=None,
        help=f"seed for reproducible samples, {SEED_HELP} (sample i uses seed + i)",
    )
    p.add_argument(
        "--num-samples",
        type=int_arg(1, limits.MAX_NUM_SAMPLES),
        default=1,
        help=f"number of independent samples, 1 to {limits.MAX_NUM_SAMPLES:,} (default 1)",
    )
    p.add_argument("--no-kv-cache", action="store_true", help="recompute the whole context every step")
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch", help="implementation to run")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("eval", help="validation loss and perplexity of a GPT checkpoint on a corpus")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--data", required=True, help="corpus name or text file")
    p.add_argument(
        "--split", choices=["val", "train", "all"], default="val", help="val = last 10%% of the text (default)"
    )
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch", help="implementation to evaluate with")
    p.add_argument(
        "--batch-size",
        type=int_arg(1, limits.MAX_EVAL_BATCH_SIZE),
        default=32,
        help=f"windows per forward pass, 1 to {limits.MAX_EVAL_BATCH_SIZE:,} (default 32)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from attnlab.train.recipes import run_demo

    arch = getattr(args, "arch", registry.default_model_type("causal_lm"))
    if is_rank0():
        print(
            f"attnlab demo: training a small {registry.model_label(arch)} for about {args.seconds:.0f} s "
            "(Ctrl-C stops and keeps the checkpoint)"
        )
    out = run_demo(args.out, source=args.data, seconds=args.seconds, seed=args.seed, force=args.force, arch=arch)
    r = out["results"]
    print()
    print(
        f"trained {r['num_parameters']:,} parameters for {r['step']} steps in {r['train_seconds']:.0f} s "
        f"({r['tokens_per_sec']:,.0f} tokens/s); validation loss {r['val_loss']:.3f} "
        f"(perplexity {r['val_perplexity']:.2f})"
    )
    for t, text in out["samples"].items():
        print(f"\n--- sample at temperature {t} (prompt {out['prompt']!r}) ---")
        print(text)
    print()
    print(f"run folder: {out['out_dir']}")
    for f in out["figures"]:
        print(f"  figure: {f}")
    print(f"  samples: {Path(out['out_dir']) / 'samples.txt'}")
    print(f"next: attnlab generate --checkpoint {shlex.quote(out['out_dir'])} --prompt {shlex.quote(out['prompt'])}")
    return 0


def _train_arch(args: argparse.Namespace) -> str:
    """The causal LM to train: --arch, else the config file's `arch`, else (with --resume) the checkpoint's, else gpt.

    Raises:
        ConfigError: the file's `arch` is not a registered causal LM, or --resume names another
            architecture than the checkpoint holds.
    """
    from attnlab import checkpoint as ckpt
    from attnlab import config as C
    from attnlab.errors import CheckpointError
    from attnlab.train.recipes import causal_lm_config_class

    arch = args.arch
    if arch is None and args.config:
        value = C.load_file(args.config).get("arch")
        if value is not None:
            if not isinstance(value, str) or value not in _arch_choices():
                raise ConfigError(
                    f"config file {args.config!r}: arch must be one of {', '.join(_arch_choices())}, got {value!r:.60}"
                )
            arch = value
    if args.resume:
        try:
            saved_type = ckpt.read_metadata(args.out)["model_type"]
        except CheckpointError:
            saved_type = None  # not a checkpoint: the recipe says so in its own words
        if saved_type is not None and registry.has_capability(saved_type, "causal_lm"):
            if arch is not None and arch != saved_type:
                raise ConfigError(
                    f"cannot resume {args.out!r} with --arch {arch}: it holds a {saved_type} model; "
                    f"drop --arch (or pass --arch {saved_type}), or train a new run with another --out"
                )
            arch = saved_type
    arch = arch or registry.default_model_type("causal_lm")
    causal_lm_config_class(arch)  # installed?
    return arch


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    if getattr(args, "model", None) is not None and args.task is None:
        raise ConfigError(
            f"--model {args.model} chooses the encoder-decoder of a --task run; it does not apply without --task "
            "(a language model's architecture is --arch)"
        )
    if args.task is not None or args.objective != "clm":
        if getattr(args, "arch", None) is not None:
            raise ConfigError(
                "--arch chooses the causal language model (--objective clm); "
                "it does not apply to --task or --objective mlm"
            )
        return _dispatch_other_training(args, extra)
    from attnlab import config as C
    from attnlab.train.recipes import causal_lm_config_class, check_numpy_engine, train_language_model

    arch = _train_arch(args)
    if args.engine == "numpy":
        check_numpy_engine(arch, "--engine numpy")
    chosen = args.arch is not None or arch != registry.default_model_type("causal_lm")
    model, train, data, overrides = collect_configs(
        args, extra, causal_lm_config_class(arch), "baby", top_level=("preset", "arch"), arch=arch if chosen else None
    )
    if args.resume:
        check_resume_agrees(args, overrides, model)
        saved = saved_run(args.out)
        if saved is not None:  # start from the run's own settings, then apply what was given now
            train = resumed_train(args, train, set(overrides.get("train", {})), saved)
            if args.data is None and "data" in saved:
                data = C.replace(data, {"source": saved["data"].get("source", data.source)}, section="data")
    return run_recipe(
        lambda: train_language_model(
            args.out, data=data, model=model, train=train, engine=args.engine, resume=args.resume, force=args.force
        ),
        lambda results: _print_results(results, args.out),
    )


def _print_results(results: dict[str, Any], out: str) -> None:
    val = results.get("val_loss")
    ppl = results.get("val_perplexity")
    line = f"done: {results['step']} steps in {results['train_seconds']:.1f} s"
    if results.get("tokens_per_sec"):
        line += f" ({results['tokens_per_sec']:,.0f} tokens/s)"
    if val is not None:
        line += f"; validation loss {val:.4f}"
    if ppl is not None:
        line += f" (perplexity {ppl:.2f})"
    print(line)
    print(f"checkpoint and metrics: {out}")


# Other training objectives: `run_training(args, extra)` of a CLI module here, calling the recipe of its lab.
OTHER_TRAINING = {
    "mlm": "attnlab.cli.mlm",
    "task": "attnlab.cli.seq2seq",
}
# ... whose recipes live in these modules (a lab left out of an install makes the option unavailable)
TRAINING_RECIPES = {
    "mlm": "attnlab.train.mlm",
    "task": "attnlab.train.seq2seq",
}


def _dispatch_other_training(args: argparse.Namespace, extra: list[str]) -> int:
    key = "task" if args.task is not None else args.objective
    if args.task is not None and args.objective != "clm":
        raise ConfigError("--task trains a seq2seq model; it cannot be combined with --objective")
    module_name = OTHER_TRAINING[key]
    try:
        module = importlib.import_module(module_name)
        return int(module.run_training(args, extra) or 0)
    except ModuleNotFoundError as e:
        if e.name in (module_name, TRAINING_RECIPES[key]):
            raise ConfigError(
                f"training with {'--task' if key == 'task' else '--objective ' + key} is not available in this version"
            ) from None
        raise


def cmd_generate(args: argparse.Namespace) -> int:
    from attnlab.generate import SamplingConfig

    if args.num_samples < 1:
        raise ConfigError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.seed is not None and args.seed + args.num_samples - 1 > limits.SEED_MAX:
        raise ConfigError(
            f"--seed {args.seed:,} with --num-samples {args.num_samples:,}: sample i uses seed + i, and seeds end at "
            f"{limits.SEED_MAX:,}; choose a seed of at most {limits.SEED_MAX - args.num_samples + 1:,}"
        )
    sampling = SamplingConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        use_cache=not args.no_kv_cache,
    )
    if args.engine == "numpy":
        return _generate_numpy(args, sampling)
    from attnlab.generate import generate_text, prompt_ids
    from attnlab.models.registry import load_model

    model, tokenizer = load_model(args.checkpoint, expect=registry.model_types("causal_lm"))
    if tokenizer is None:
        from attnlab.errors import CheckpointError

        raise CheckpointError(f"{args.checkpoint!r} has no tokenizer, so it cannot turn text into tokens")
    prompt_ids(tokenizer, args.prompt)  # unknown characters fail here, before anything is printed
    for i in range(args.num_samples):
        s = sampling if args.seed is None else dataclasses.replace(sampling, seed=args.seed + i)
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        sys.stdout.write(args.prompt)
        sys.stdout.flush()
        generate_text(
            model, tokenizer, args.prompt, s, on_step=lambda step, text: (sys.stdout.write(text), sys.stdout.flush())
        )
        sys.stdout.write("\n")
    return 0


def _generate_numpy(args: argparse.Namespace, sampling: Any) -> int:
    from attnlab import checkpoint as ckpt
    from attnlab.errors import CheckpointError
    from attnlab.generate import prompt_ids

    try:
        from attnlab.scratch.gpt import NumpyGPT
    except ModuleNotFoundError as e:  # pragma: no cover
        raise ConfigError(f"the numpy engine is not available in this install ({e})") from None
    from attnlab.train.recipes import check_numpy_engine

    meta = ckpt.read_metadata(args.checkpoint)
    if not registry.has_capability(meta["model_type"], "causal_lm"):
        raise CheckpointError(f"{args.checkpoint!r} holds a {meta['model_type']} model; generate needs a GPT")
    check_numpy_engine(meta["model_type"], "`generate --engine numpy`")
    model = NumpyGPT.from_checkpoint(args.checkpoint)
    tokenizer = ckpt.read_model(args.checkpoint).tokenizer
    if tokenizer is None:
        raise CheckpointError(f"{args.checkpoint!r} has no tokenizer, so it cannot turn text into tokens")
    ids = prompt_ids(tokenizer, args.prompt)
    for i in range(args.num_samples):
        seed = None if args.seed is None else args.seed + i
        out = model.generate(
            ids,
            sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            seed=seed,
        )
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        print(args.prompt + tokenizer.decode(list(out)[len(ids) :]))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from attnlab.train.recipes import evaluate_checkpoint

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    r = evaluate_checkpoint(
        args.checkpoint, args.data, engine=args.engine, split=args.split, batch_size=args.batch_size
    )
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(
            f"{r['split']} loss {r['loss']:.4f}  perplexity {r['perplexity']:.3f}  "
            f"({r['bits_per_token']:.3f} bits/token over {r['tokens']:,} tokens of {r['data']}, {r['engine']} engine)"
        )
    return 0
