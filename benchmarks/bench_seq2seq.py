"""Benchmark: train the encoder-decoder on each generated seq2seq task, report exact match.

Each task is trained exactly as `attnlab train --task NAME --out DIR` trains it (the same
library call, `attnlab.train.seq2seq.train_task`, with the task's default recipe), then
its fixed held-out examples (500 sources never seen in training) are decoded greedily
and with beam search. Prints a markdown table:

    | task | parameters | steps | training seconds | ms/step | wall seconds | exact match (greedy) | exact match (beam 4) | ...

Usage:
    python benchmarks/bench_seq2seq.py [--tasks reverse numbers sort] [--threads 2] [--out DIR]
                                       [--max-iters N]

Anchor: sequence reversal reaches 100% exact match (the UvA deep-learning course's
transformer tutorial reaches 100% accuracy on reversing digit strings), so
`reverse` should read 100.0%.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
from pathlib import Path


def run_task(name: str, out: Path, max_iters: int | None) -> dict:
    from attnlab.train.seq2seq import recipe, train_task

    r = recipe(name)
    train = dataclasses.replace(r.train, progress=False)
    if max_iters is not None:
        train = dataclasses.replace(train, max_iters=max_iters)
    t0 = time.perf_counter()
    results = train_task(out / name, task=r.task, model=r.model, train=train)
    results["wall_seconds"] = time.perf_counter() - t0
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["reverse", "numbers", "sort"], help="tasks to train")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="folder for the runs (default: a temporary folder)")
    parser.add_argument("--max-iters", type=int, default=None, help="override every recipe's step count")
    args = parser.parse_args(argv)

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="attnlab-seq2seq-"))
    rows = []
    for name in args.tasks:
        print(f"training {name} ...", file=sys.stderr, flush=True)
        r = run_task(name, out, args.max_iters)
        rows.append((name, r))
        print(f"  {name}: exact match {100 * r['exact_match']:.1f}% in {r['train_seconds']:.0f} s", file=sys.stderr)

    print(
        f"Seq2seq tasks ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; runs in {out})\n"
    )
    print(
        "| task | parameters | steps | training seconds | ms/step | wall seconds (with evaluations) "
        "| exact match (greedy) | exact match (beam 4) | held-out examples |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['num_parameters']:,} | {r['step']} | {r['train_seconds']:.0f} | {r['ms_per_iter']:.0f} | "
            f"{r['wall_seconds']:.0f} | "
            f"{100 * r['exact_match']:.1f}% | {100 * r['exact_match_beam']:.1f}% | {r['num_eval_examples']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
