"""`attnlab compare mnist | sequence`: architecture comparisons from the command line.

    attnlab compare mnist    --models vit,cnn,mlp [--data mnist5k|mnist|fashion|digits|PATH] [--epochs N] --out DIR
    attnlab compare sequence --models rnn,lstm,gru,transformer [--task recall] [--seq-len 64] --out DIR
    attnlab compare points   --models patch,point,pointnet,mlp [--data shapes|modelnet10|modelnet40|PATH] --out DIR

With --train-sizes (or --seeds, --vit-remedies) `compare mnist` and `compare sequence` run the
small-data study instead (`attnlab.compare.small_data`): every model at every training-set
size and seed, accuracy with error bars against size, and where the ViT reaches the ConvNet.

    attnlab compare mnist --train-sizes 250,500,1000,2000,4000 --seeds 0,1,2 \
                          [--vit-remedies augment,patch4,conv-stem] --out DIR

The work happens in `attnlab.compare.mnist.compare_mnist` and
`attnlab.compare.sequence.compare_sequence`; this module turns flags into their config
dataclasses and prints the results table and the files written.
"""

from __future__ import annotations

import argparse
from typing import Any

from attnlab import limits
from attnlab.cli.train_common import add_force_flag
from attnlab.errors import ConfigError
from attnlab.limits import SEED_HELP, float_arg, int_arg, seed_arg

MAX_TIMING_LENGTHS = 32  # --timing-lengths: at most this many lengths


def _lengths(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none", "off"):
        return ()
    parts = text.split(",")
    if len(parts) > MAX_TIMING_LENGTHS:
        raise argparse.ArgumentTypeError(f"give at most {MAX_TIMING_LENGTHS} lengths, got {len(parts)}")
    try:
        values = tuple(limits.parse_int(t, "a length") for t in parts)
    except ConfigError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers such as 16,64,256, got {shown!r}"
        ) from None
    for v in values:
        try:
            limits.check_int(v, "each length", 2, limits.MAX_COMPARE_SEQ_LEN)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return values


MAX_STUDY_VALUES = 64  # --train-sizes / --seeds: at most this many


def _csv_of(parse: Any, what: str, example: str) -> Any:
    """argparse `type=` for a comma-separated list of distinct `parse`d values."""

    def convert(text: str) -> tuple[Any, ...]:
        parts = text.split(",")
        if len(parts) > MAX_STUDY_VALUES:
            raise argparse.ArgumentTypeError(f"give at most {MAX_STUDY_VALUES} {what}, got {len(parts)}")
        if any(not p.strip() for p in parts):
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} such as {example}, got {shown!r}")
        try:
            values = tuple(parse(p) for p in parts)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"each of the {what} may be given once, got {text.strip()!r}")
        return values

    convert.__name__ = what
    return convert


def _train_size(text: str) -> int:
    from attnlab.compare.small_data import MAX_TRAIN_SIZE

    return limits.check_int(limits.parse_int(text, "a training size"), "a training size", 2, MAX_TRAIN_SIZE)


def _seed(text: str) -> int:
    return limits.check_seed(limits.parse_int(text, "a seed"), "a seed")


def _study_flags(parser: argparse.ArgumentParser, unit: str, default_sizes: str) -> None:
    """--train-sizes, --seeds and --min-steps: the small-data study."""
    parser.add_argument(
        "--train-sizes",
        type=_csv_of(_train_size, "training sizes", "250,500,1000"),
        default=None,
        metavar="N,N,...",
        help=f"run the small-data study: train every model on each of these numbers of training {unit} "
        f"(nested, class-balanced subsets; default with --seeds: {default_sizes})",
    )
    parser.add_argument(
        "--seeds",
        type=_csv_of(_seed, "seeds", "0,1,2"),
        default=None,
        metavar="S,S,...",
        help=f"small-data study: seeds, each {SEED_HELP}, one run per seed at every size (default 0,1,2)",
    )
    parser.add_argument(
        "--min-steps",
        type=int_arg(1, limits.MAX_ITERS),
        default=None,
        help="small-data study: at least this many optimizer steps a run, however small its set "
        "(default 250 for mnist, 300 for sequence; --epochs passes over the set when that is more)",
    )


def _refuse(flags: dict[str, tuple[bool, str]]) -> None:
    """ConfigError naming the first given flag that the small-data study does not take, and why."""
    for flag, (given, why) in flags.items():
        if given:
            raise ConfigError(f"{flag} does not apply to the small-data study: {why}")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder for results.json, figures and models/ (created)"
    )
    add_force_flag(parser)
    parser.add_argument("--seed", type=seed_arg, default=0, help=f"random seed, {SEED_HELP} (default 0)")
    parser.add_argument("--device", default="auto", help="auto [default], cpu, cuda, cuda:N or mps")
    parser.add_argument("--quick", action="store_true", help="tiny models and a short run: a smoke test in seconds")
    parser.add_argument("--no-save-models", action="store_true", help="do not write the trained models to DIR/models")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `compare` command group to the top-level parser."""
    from attnlab.compare.mnist import DEFAULT_IMAGE_RECIPES, IMAGE_MODEL_NAMES
    from attnlab.compare.sequence import SEQUENCE_MODEL_NAMES, SEQUENCE_TASK_NAMES

    parser = sub.add_parser(
        "compare",
        help="compare architectures: ViT vs ConvNet vs MLP on digits; RNN/LSTM/GRU vs transformer on recall; "
        "point-cloud tokenizations",
        description="Train several architectures on the same data and write a comparison (tables, figures, models).",
    )
    kinds = parser.add_subparsers(dest="comparison", metavar="COMPARISON", parser_class=type(parser))
    parser.set_defaults(func=_no_comparison)

    recipes = ", ".join(f"{n} {r.epochs}" for n, r in DEFAULT_IMAGE_RECIPES.items())
    p = kinds.add_parser(
        "mnist",
        help="ViT vs ConvNet vs MLP on MNIST-style images",
        description=(
            "Train a ViT, a ConvNet and an MLP of similar size on the same images, then write "
            "DIR/results.json (parameters, training seconds, test accuracy, inference ms per image), "
            "a markdown table, learning curves, a confusion matrix and misclassified images per model, "
            "ViT attention maps on sample digits, and each model as a checkpoint in DIR/models/NAME."
        ),
    )
    p.add_argument(
        "--models",
        default=",".join(IMAGE_MODEL_NAMES),
        help=f"comma-separated, from {', '.join(IMAGE_MODEL_NAMES)} (default: all)",
    )
    p.add_argument(
        "--data",
        default="mnist5k",
        help="mnist5k [default, offline], mnist, fashion (downloaded once), digits (8x8), or a folder of IDX files",
    )
    p.add_argument(
        "--epochs",
        type=int_arg(1, limits.MAX_EPOCHS),
        default=None,
        help=f"epochs for every model, 1 to {limits.MAX_EPOCHS:,} (default per model: {recipes})",
    )
    p.add_argument(
        "--batch-size",
        type=int_arg(1, limits.MAX_BATCH_SIZE),
        default=None,
        help=f"batch size for every model, 1 to {limits.MAX_BATCH_SIZE:,} (default per model)",
    )
    p.add_argument(
        "--lr",
        type=float_arg(0.0, limits.MAX_LR, low_open=True),
        default=None,
        help=f"peak learning rate for every model, more than 0 and at most {limits.MAX_LR:g} (default per model)",
    )
    p.add_argument("--no-augment", action="store_true", help="train the ViT without its random 2-pixel shifts")
    p.add_argument(
        "--num-train",
        type=int_arg(10, limits.MAX_IMAGES),
        default=None,
        help=f"train on a class-balanced subset of this many images, 10 to {limits.MAX_IMAGES:,}",
    )
    p.add_argument(
        "--num-test",
        type=int_arg(10, limits.MAX_IMAGES),
        default=None,
        help=f"test on a class-balanced subset of this many images, 10 to {limits.MAX_IMAGES:,}",
    )
    _study_flags(p, "images", "250, 500, ... up to the training images available")
    p.add_argument(
        "--vit-remedies",
        default=None,
        metavar="R,R,...",
        help="small-data study: extra ViT lines, from augment (random 2-pixel shifts), patchP (P x P patches, "
        "e.g. patch4) and conv-stem (3x3 convolutions before the patches), e.g. augment,patch4,conv-stem",
    )
    _common(p)
    p.set_defaults(func=cmd_compare_mnist)

    p = kinds.add_parser(
        "sequence",
        help="RNN / LSTM / GRU vs a transformer on long-range recall",
        description=(
            "Train recurrent networks and a small transformer to recall a marked symbol k steps back, then "
            "write accuracy against distance, the gradient reaching each earlier step (vanishing gradients), "
            "training time per epoch and per step as sequences grow, and the models."
        ),
    )
    p.add_argument(
        "--models",
        default=",".join(SEQUENCE_MODEL_NAMES),
        help=f"comma-separated, from {', '.join(SEQUENCE_MODEL_NAMES)} (default: all)",
    )
    p.add_argument("--task", default="recall", help=f"the task: {', '.join(SEQUENCE_TASK_NAMES)} (default recall)")
    p.add_argument(
        "--seq-len",
        type=int_arg(3, limits.MAX_COMPARE_SEQ_LEN),
        default=64,
        help=f"tokens per sequence, 3 to {limits.MAX_COMPARE_SEQ_LEN:,}; distances 1 .. seq-len - 1 (default 64)",
    )
    p.add_argument(
        "--num-symbols",
        type=int_arg(2, limits.MAX_SYMBOLS),
        default=8,
        help=f"alphabet size, 2 to {limits.MAX_SYMBOLS:,}; chance is 1/num-symbols (default 8)",
    )
    p.add_argument(
        "--epochs",
        type=int_arg(1, limits.MAX_EPOCHS),
        default=None,
        help=f"epochs, 1 to {limits.MAX_EPOCHS:,} (default 15)",
    )
    p.add_argument(
        "--steps-per-epoch",
        type=int_arg(1, limits.MAX_ITERS),
        default=None,
        help=f"optimizer steps per epoch, 1 to {limits.MAX_ITERS:,} (default 100)",
    )
    p.add_argument(
        "--batch-size",
        type=int_arg(1, limits.MAX_BATCH_SIZE),
        default=64,
        help=f"sequences per step, 1 to {limits.MAX_BATCH_SIZE:,} (default 64)",
    )
    p.add_argument(
        "--lr",
        type=float_arg(0.0, limits.MAX_LR, low_open=True),
        default=None,
        help=f"peak learning rate for every model, more than 0 and at most {limits.MAX_LR:g} (default per model)",
    )
    p.add_argument(
        "--timing-lengths",
        type=_lengths,
        default=None,
        help=f"sequence lengths of the step-time sweep, e.g. 16,64,256, each 2 to {limits.MAX_COMPARE_SEQ_LEN:,}, "
        f"at most {MAX_TIMING_LENGTHS} (default 16,32,64,128,256; 'none' skips it)",
    )
    _study_flags(p, "sequences", "250,500,1000,2000,4000,8000")
    _common(p)
    p.set_defaults(func=cmd_compare_sequence)
    _register_points(kinds)
    _register_objectives(kinds)


def _register_points(kinds: argparse._SubParsersAction) -> None:
    from attnlab.compare.points import DEFAULT_POINT_RECIPES, POINT_MODEL_NAMES

    recipes = ", ".join(f"{n} {r.epochs}" for n, r in DEFAULT_POINT_RECIPES.items())
    p = kinds.add_parser(
        "points",
        help="point-cloud tokenizations: patch vs per-point transformer vs PointNet vs an MLP",
        description=(
            "Train a transformer on Point-BERT-style patch tokens, one with every point a token, PointNet and an "
            "MLP on the ordered points, on the same clouds, then write DIR/results.json, a markdown table, "
            "learning curves, confusion matrices, 3-D figures of the patches and of the CLS token's attention, "
            "and each model as a checkpoint in DIR/models/NAME."
        ),
    )
    p.add_argument(
        "--models",
        default=",".join(POINT_MODEL_NAMES),
        help=f"comma-separated, from {', '.join(POINT_MODEL_NAMES)} (default: all)",
    )
    p.add_argument(
        "--data",
        default="shapes",
        help="shapes [default, procedural, offline], modelnet10, modelnet40 (downloaded once), or a ModelNet zip/folder",
    )
    p.add_argument(
        "--num-train", type=int_arg(1, 1_000_000), default=250, help="shapes: training clouds per class (default 250)"
    )
    p.add_argument(
        "--num-test", type=int_arg(1, 1_000_000), default=50, help="shapes: test clouds per class (default 50)"
    )
    p.add_argument(
        "--num-points",
        type=int_arg(1, 100_000),
        default=None,
        help="most points per cloud (shapes, default 256) or points per mesh (ModelNet, default 1024)",
    )
    p.add_argument("--data-seed", type=seed_arg, default=0, help="seed of the procedural shapes (default 0)")
    p.add_argument(
        "--epochs",
        type=int_arg(1, limits.MAX_EPOCHS),
        default=None,
        help=f"epochs for every model, 1 to {limits.MAX_EPOCHS:,} (default per model: {recipes})",
    )
    p.add_argument(
        "--batch-size",
        type=int_arg(1, limits.MAX_BATCH_SIZE),
        default=None,
        help=f"batch size for every model, 1 to {limits.MAX_BATCH_SIZE:,} (default per model)",
    )
    p.add_argument(
        "--lr",
        type=float_arg(0.0, limits.MAX_LR, low_open=True),
        default=None,
        help=f"peak learning rate for every model, more than 0 and at most {limits.MAX_LR:g} (default per model)",
    )
    p.add_argument("--no-augment", action="store_true", help="train without random rotation, scale and jitter")
    _common(p)
    p.set_defaults(func=cmd_compare_points)


def cmd_compare_points(args: argparse.Namespace) -> int:
    from attnlab.compare.points import PointsCompareConfig, compare_points

    config = PointsCompareConfig(
        models=args.models,
        data=args.data,
        num_train_per_class=args.num_train,
        num_test_per_class=args.num_test,
        num_points=args.num_points,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        augment=not args.no_augment,
        seed=args.seed,
        data_seed=args.data_seed,
        device=args.device,
        quick=args.quick,
        save_models=not args.no_save_models,
        progress=not args.no_progress,
    )
    print(f"attnlab compare points: training {', '.join(config.models)} on {config.data}", flush=True)
    result = compare_points(config, args.out, on_model_done=_print_model, force=args.force)
    _print_summary(result)
    return 0


def _no_comparison(args: argparse.Namespace) -> int:
    raise ConfigError(
        "choose a comparison: `attnlab compare mnist --out DIR`, `attnlab compare sequence --out DIR` "
        "or `attnlab compare points --out DIR`"
    )


def _print_model(name: str, result: dict) -> None:
    if "test_accuracy" in result:
        print(
            f"  {name}: {100 * result['test_accuracy']:.2f}% test accuracy after {result['train_seconds']:.1f} s "
            f"of training ({result['parameters']:,} parameters)",
            flush=True,
        )
    else:
        first = result["first_distance_below_90"]
        where = f"below 90% from distance {first}" if first is not None else "at least 90% at every distance"
        print(
            f"  {name}: {100 * result['mean_accuracy']:.1f}% mean accuracy, {where} "
            f"({result['seconds_per_epoch']:.2f} s per epoch)",
            flush=True,
        )


def _print_summary(result: dict) -> None:
    print()
    print(result["table"])
    print()
    for path in result["files"]:
        print(f"  wrote {path}")
    for name, model in result["models"].items():
        if "checkpoint" in model:
            print(f"  model {name}: {model['checkpoint']}")


def _is_study(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in ("train_sizes", "seeds", "vit_remedies", "min_steps"))


def _run_study(args: argparse.Namespace, task: str, **settings: Any) -> int:
    from attnlab.compare.small_data import SmallDataConfig, plan_lines, run_small_data_study

    if args.seed != 0:
        raise ConfigError("the small-data study takes --seeds (e.g. --seeds 0,1,2), not --seed")
    config = SmallDataConfig(
        task=task,
        train_sizes=args.train_sizes,
        seeds=args.seeds if args.seeds is not None else (0, 1, 2),
        models=args.models,
        epochs=args.epochs,
        min_steps=args.min_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        quick=args.quick,
        progress=not args.no_progress,
        **settings,
    )
    lines = ", ".join(line.name for line in plan_lines(config))
    print(f"attnlab compare {task}: small-data study of {lines}, seeds {', '.join(map(str, config.seeds))}", flush=True)
    result = run_small_data_study(args.out, config, force=args.force)
    counts = {}
    for row in result["rows"]:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    print()
    print(result["report"])
    print(f"  {len(result['rows'])} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for path in result["files"]:
        print(f"  wrote {path}")
    return 0


def cmd_compare_mnist(args: argparse.Namespace) -> int:
    from attnlab.compare.mnist import MnistCompareConfig, compare_mnist

    if _is_study(args):
        _refuse(
            {
                "--num-train": (args.num_train is not None, "its training sets are --train-sizes"),
                "--no-augment": (args.no_augment, "only its vit+augment line (--vit-remedies augment) augments"),
                "--no-save-models": (args.no_save_models, "every run keeps its checkpoint, to resume from"),
            }
        )
        return _run_study(args, "mnist", data=args.data, num_test=args.num_test, vit_remedies=args.vit_remedies or ())

    config = MnistCompareConfig(
        models=args.models,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        augment=not args.no_augment,
        seed=args.seed,
        device=args.device,
        num_train=args.num_train,
        num_test=args.num_test,
        quick=args.quick,
        save_models=not args.no_save_models,
        progress=not args.no_progress,
    )
    print(f"attnlab compare mnist: training {', '.join(config.models)} on {config.data}", flush=True)
    result = compare_mnist(config, args.out, on_model_done=_print_model, force=args.force)
    _print_summary(result)
    return 0


def cmd_compare_sequence(args: argparse.Namespace) -> int:
    from attnlab.compare.sequence import SequenceCompareConfig, compare_sequence

    if _is_study(args):
        _refuse(
            {
                "--steps-per-epoch": (
                    args.steps_per_epoch is not None,
                    "a run takes max(--min-steps, --epochs passes over its training pool) steps",
                ),
                "--timing-lengths": (args.timing_lengths is not None, "it has no step-time sweep"),
                "--no-save-models": (args.no_save_models, "every run keeps its checkpoint, to resume from"),
            }
        )
        if args.task != "recall":
            raise ConfigError(f"unknown task {args.task!r}; valid tasks: recall")
        return _run_study(args, "sequence", seq_len=args.seq_len, num_symbols=args.num_symbols)

    config = SequenceCompareConfig(
        models=args.models,
        task=args.task,
        seq_len=args.seq_len,
        num_symbols=args.num_symbols,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        timing_lengths=args.timing_lengths,
        quick=args.quick,
        save_models=not args.no_save_models,
        progress=not args.no_progress,
    )
    print(
        f"attnlab compare sequence: training {', '.join(config.models)} on {config.task} "
        f"(seq_len {config.seq_len}, {config.num_symbols} symbols)",
        flush=True,
    )
    result = compare_sequence(config, args.out, on_model_done=_print_model, force=args.force)
    _print_summary(result)
    return 0


# ---------------------------------------------------------------------------
# attnlab compare objectives
# ---------------------------------------------------------------------------


def _objectives_list(text: str) -> tuple[str, ...]:
    from attnlab.compare.objectives import OBJECTIVES

    values = tuple(t.strip().lower() for t in text.split(","))
    for v in values:
        if v not in OBJECTIVES:
            raise argparse.ArgumentTypeError(f"unknown objective {v[:40]!r}; choose from {', '.join(OBJECTIVES)}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"each objective may be given once, got {text.strip()[:60]!r}")
    return values


def _seed_list(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    if len(parts) > 64:
        raise argparse.ArgumentTypeError(f"give at most 64 seeds, got {len(parts)}")
    try:
        values = tuple(limits.check_seed(limits.parse_int(t, "a seed"), "a seed") for t in parts)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"each seed may be given once, got {text.strip()[:60]!r}")
    return values


def _token_budget(text: str) -> int:
    from attnlab.train.scale import parse_tokens

    try:
        return parse_tokens(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _register_objectives(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser(
        "objectives",
        help="causal LM vs masked LM vs span corruption: the same corpus, size and budget, probed downstream",
        description=(
            "Pretrain a GPT (causal LM), an encoder (masked LM, BERT 15%% 80/10/10) and an encoder-decoder "
            "(T5 span corruption) of matched size on the embedded corpus without the test passages, for the "
            "same token budget, then probe each (logistic regression on frozen mean-pooled features) and "
            "fine-tune each on CPython documentation sentences labelled by topic. Writes DIR/runs/ (one run "
            "folder a pretraining and a fine-tune: skipped when finished, resumed when interrupted), "
            "runs.csv, summary.csv, report.md, results.json and objectives.png."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the study folder (created)")
    p.add_argument(
        "--objectives", type=_objectives_list, default=None, help="comma-separated of clm, mlm, span (default all)"
    )
    p.add_argument("--seeds", type=_seed_list, default=(0, 1, 2), help="comma-separated seeds (default 0,1,2)")
    p.add_argument(
        "--tokens",
        type=_token_budget,
        default=None,
        help="corpus characters each pretraining reads, e.g. 250k or 1M (default 500k; --quick 9216)",
    )
    p.add_argument("--quick", action="store_true", help="tiny models and budgets: a smoke test in seconds")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an --out that holds files attnlab did not write, and train again the runs whose "
        "settings differ from this command's (instead of refusing them)",
    )
    p.add_argument("--device", default="auto", help="auto [default], cpu, cuda, cuda:N or mps")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=cmd_compare_objectives)


def cmd_compare_objectives(args: argparse.Namespace) -> int:
    from attnlab.compare.objectives import OBJECTIVES, ObjectivesConfig, compare_objectives

    config = ObjectivesConfig(
        objectives=args.objectives or OBJECTIVES,
        seeds=args.seeds,
        tokens=args.tokens,
        quick=args.quick,
        device=args.device,
        progress=not args.no_progress,
    )
    print(
        f"attnlab compare objectives: {', '.join(config.objectives)}, seeds {', '.join(map(str, config.seeds))}, "
        f"{config.steps * config.batch * config.context:,} tokens each",
        flush=True,
    )
    result = compare_objectives(args.out, config, force=args.force)
    print(result["report"])
    for f in result["files"]:
        print(f"wrote {f}")
    return 0
