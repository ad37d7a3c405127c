"""`attnlab probe`: probe protein embeddings (a language model or a control) on a labelled data set.

    attnlab probe --data amp|PATH --task seq-class|seq-reg|residue-class
                  --embedder onehot|composition|random|CHECKPOINT|HF_DIR [--pool mean|max|cls|attn]
                  --probe linear|mlp|transformer [--seeds 3] --out DIR

The work happens in `attnlab.bio.workflow.run_probe_experiment`; this module turns the
flags into a `ProbeRunConfig`, prints the metrics table and lists the files written.
"""

from __future__ import annotations

import argparse
import dataclasses

from attnlab import limits
from attnlab.cli.train_common import add_force_flag
from attnlab.errors import ConfigError
from attnlab.limits import SEED_HELP, float_arg, int_arg, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `probe` command to the top-level parser."""
    p = sub.add_parser(
        "probe",
        help="train probes on protein embeddings (language model vs one-hot / composition / random controls)",
        description=(
            "Embed a labelled sequence set with a protein language model or a control, train a probe on the "
            "train split over several seeds (early stopping on the validation split), and write the test "
            "metrics as mean ± std to DIR/results.json and DIR/results.md, with a confusion matrix, a PCA "
            "of the embeddings, and the probes (DIR/probes/seed<k>) for `attnlab app`. Embeddings are "
            "cached on disk, so further probes on the same embedder and data start at once."
        ),
    )
    p.add_argument("--data", required=True, help="amp (the offline modlamp AMP set) or a FASTA / CSV file with labels")
    p.add_argument(
        "--task",
        required=True,
        choices=("seq-class", "seq-reg", "residue-class"),
        help="seq-class: a class per sequence; seq-reg: a number per sequence; residue-class: a class per residue",
    )
    p.add_argument(
        "--embedder",
        required=True,
        help="onehot, composition, random (random:PRESET or random:CHECKPOINT for another shape), an attnlab "
        "encoder checkpoint folder, a Hugging Face ESM-2 folder, or a hub name (org/name, online)",
    )
    p.add_argument(
        "--pool", default=None, help="sequence tasks: mean [default], max, cls or attn (learned attention pooling)"
    )
    p.add_argument("--probe", default="linear", help="linear [default], mlp or transformer")
    p.add_argument(
        "--seeds",
        default="3",
        help=f"number of seeds, 1 to {limits.MAX_PROBE_SEEDS} (probes use seeds 0 .. N-1; default 3)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder for results.json, results.md, figures and probes/"
    )
    add_force_flag(p)
    p.add_argument(
        "--max-sequences",
        type=int_arg(10, limits.MAX_SEQUENCES),
        default=None,
        metavar="N",
        help=f"use a deterministic subset of N sequences, 10 to {limits.MAX_SEQUENCES:,}",
    )
    p.add_argument(
        "--finetune",
        action="store_true",
        help="fine-tune the language model with a linear head instead of probing frozen embeddings",
    )
    p.add_argument(
        "--layer",
        type=int_arg(-limits.MAX_INDEX, limits.MAX_INDEX),
        default=None,
        help="hidden state to embed with (0 = embeddings, negative counts from the end; default the last)",
    )
    p.add_argument(
        "--random-like",
        default=None,
        metavar="PRESET|DIR",
        help="shape of the random control: an encoder preset or a model folder (default protein-small)",
    )
    p.add_argument(
        "--random-seed",
        type=seed_arg,
        default=0,
        help=f"initialisation seed of the random control, {SEED_HELP} (default 0)",
    )
    p.add_argument(
        "--long-sequences",
        default="window",
        choices=("window", "error"),
        help="sequences longer than the model's context: overlapping windows [default] or an error",
    )
    p.add_argument(
        "--epochs",
        type=int_arg(1, limits.MAX_EPOCHS),
        default=None,
        help=f"most epochs of probe training / fine-tuning, 1 to {limits.MAX_EPOCHS:,}",
    )
    p.add_argument(
        "--lr",
        type=float_arg(0.0, limits.MAX_LR, low_open=True),
        default=None,
        help=f"probe learning rate, more than 0 and at most {limits.MAX_LR:g} (default 1e-2 linear, 1e-3 others)",
    )
    p.add_argument(
        "--max-train-residues",
        type=int_arg(1, limits.MAX_SEQUENCES),
        default=None,
        metavar="N",
        help=f"residue-class with linear/mlp: train on a random N of the training residues, 1 to {limits.MAX_SEQUENCES:,}",
    )
    p.add_argument(
        "--crop-length",
        type=int_arg(1, limits.MAX_CROP),
        default=None,
        metavar="L",
        help=f"residue-class with the transformer probe: train on random windows of L residues, 1 to {limits.MAX_CROP:,}",
    )
    p.add_argument(
        "--batch-size",
        type=int_arg(1, limits.MAX_EVAL_BATCH_SIZE),
        default=16,
        help=f"sequences per forward pass while embedding, 1 to {limits.MAX_EVAL_BATCH_SIZE:,} (default 16)",
    )
    p.add_argument(
        "--split-seed",
        type=seed_arg,
        default=0,
        help=f"seed of the splits drawn when the data has none, {SEED_HELP} (default 0)",
    )
    p.add_argument("--device", default="cpu", help="cpu [default], auto, cuda, cuda:N or mps")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument("--cache-dir", default=None, help="embedding cache folder (default $ATTNLAB_CACHE/embeddings)")
    p.add_argument("--no-save-probes", action="store_true", help="do not write DIR/probes")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument(
        "--drop-bad-labels",
        action="store_true",
        help="drop records whose label is missing or not finite (empty, NaN, inf, NA, null, None) and count "
        "them in the notes of results.json / results.md, instead of stopping at the first one",
    )
    p.set_defaults(func=cmd_probe)


def _seeds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--seeds must be a whole number from 1 to 100, got {text!r}") from None
    return value


def cmd_probe(args: argparse.Namespace) -> int:
    from attnlab.bio.probes import ProbeConfig
    from attnlab.bio.workflow import ProbeRunConfig, run_probe_experiment

    probe_config = ProbeConfig()
    overrides = {}
    if args.epochs is not None:
        overrides["max_epochs"] = args.epochs
    if args.lr is not None:
        overrides["learning_rate"] = args.lr
    if args.max_train_residues is not None:
        overrides["max_train_residues"] = args.max_train_residues
    if args.crop_length is not None:
        overrides["crop_length"] = args.crop_length
    probe_config = dataclasses.replace(probe_config, **overrides)
    from attnlab.bio.finetune import FineTuneConfig

    finetune_config = FineTuneConfig(max_epochs=args.epochs) if args.epochs is not None else FineTuneConfig()
    config = ProbeRunConfig(
        data=args.data,
        task=args.task,
        embedder=args.embedder,
        out=args.out,
        pool=args.pool,
        probe=args.probe,
        seeds=_seeds(args.seeds),
        max_sequences=args.max_sequences,
        split_seed=args.split_seed,
        finetune=args.finetune,
        layer=args.layer,
        batch_size=args.batch_size,
        device=args.device,
        random_like=args.random_like,
        random_seed=args.random_seed,
        long_sequences=args.long_sequences,
        cache=not args.no_cache,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        save_probes=not args.no_save_probes,
        probe_config=probe_config,
        finetune_config=finetune_config,
        bad_labels="drop" if args.drop_bad_labels else "error",
    )
    results = run_probe_experiment(config, force=args.force)
    from attnlab.bio.workflow import comparison_table

    data = results["data"]
    print(
        f"{data['num_sequences']} sequences ({', '.join(f'{k} {v}' for k, v in data['split_sizes'].items())}); "
        f"embedder {results['embedder']['description']}"
    )
    for note in data.get("notes", []):
        if "missing or non-finite label" in note:
            print(note)
    print()
    print(comparison_table([results]))
    print()
    print(f"{len(results['runs'])} seed(s), test split, mean ± std; primary metric {results['primary_metric']}")
    if "cache" in results:
        print(f"embedding cache: {results['cache']['hits']} hit(s), {results['cache']['misses']} miss(es)")
    for path in results["files"]:
        print(f"  wrote {path}")
    if not args.no_save_probes:
        print(
            f"  wrote {args.out}/{'finetuned' if args.finetune else 'probes'}/seed0 .. seed{len(results['runs']) - 1}"
        )
    return 0
