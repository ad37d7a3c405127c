"""Benchmark: RNN / LSTM / GRU vs a transformer on long-range recall, on 2 CPU threads.

Goal (issue 5, section 5): the transformer and LSTM/GRU solve short distances; report
the distance at which each model falls below 90% accuracy.

Runs `attnlab.compare.sequence.compare_sequence` (the code behind `attnlab compare
sequence`) with its defaults: sequences of 64 tokens, 8 symbols (chance 12.5%),
15 epochs of 100 steps of 64 sequences, 100 probe sequences at every distance 1..63.
"Solves short distances" here means at least 90% at every k = 1..5.

    python benchmarks/bench_sequence.py
    python benchmarks/bench_sequence.py --seq-len 128 --models lstm,transformer
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHORT = range(1, 6)  # "short distances"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="rnn,lstm,gru,transformer", help="models to train")
    parser.add_argument("--seq-len", type=int, default=64, help="tokens per sequence (default 64)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of 100 steps (default 15)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out",
        default=str(REPO / "runs" / "bench-sequence"),
        help="folder for figures and models (default runs/bench-sequence)",
    )
    args = parser.parse_args(argv)

    import torch

    from attnlab.compare.sequence import SequenceCompareConfig, compare_sequence

    torch.set_num_threads(args.threads)
    config = SequenceCompareConfig(
        models=args.models, seq_len=args.seq_len, epochs=args.epochs, seed=args.seed, device="cpu", progress=False
    )
    start = time.perf_counter()
    result = compare_sequence(config, args.out)
    wall = time.perf_counter() - start
    print(
        f"# Sequence benchmark: recall, seq_len {args.seq_len}, {args.threads} torch threads, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d %H:%M')} ({wall:.0f} s wall clock in all)\n"
    )
    print(
        "| model | parameters | s / epoch | ms / step | mean accuracy | min over k = 1..5 | solves k <= 5 | first k below 90% |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for name, r in result["models"].items():
        by_k = {int(k): v for k, v in r["accuracy_by_distance"].items()}
        short = min(by_k[k] for k in SHORT if k in by_k)
        first = r["first_distance_below_90"]
        print(
            f"| {name} | {r['parameters']:,} | {r['seconds_per_epoch']:.2f} | {r['ms_per_step']:.1f} | "
            f"{100 * r['mean_accuracy']:.1f}% | {100 * short:.1f}% | {'yes' if short >= 0.9 else 'no'} | "
            f"{first if first is not None else f'never (>= 90% up to {max(by_k)})'} |"
        )
    lengths = sorted({int(t) for r in result["models"].values() for t in r["step_ms_by_length"]})
    if lengths:
        print("\nms per training step (batch 64) by sequence length:\n")
        print("| model | " + " | ".join(f"T = {t}" for t in lengths) + " |")
        print("|---|" + "---:|" * len(lengths))
        for name, r in result["models"].items():
            print(f"| {name} | " + " | ".join(f"{r['step_ms_by_length'][str(t)]:.1f}" for t in lengths) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
