"""Benchmark: the transfer study (`attnlab transfer`), default settings, embedded corpus -> tiny Shakespeare.

Goal (issue 15, sec. 4): on 2 CPU cores the default study (a 2x48 GPT pretrained on 2M
characters of the embedded pydoc corpus, once a seed; then fine-tuned for 500 steps on 5k,
20k, 80k and 320k characters of tiny Shakespeare, against the same model trained from
scratch for the same 500 steps; seeds 0 and 1: 18 runs, about 10,000 optimizer steps) takes
about 10 minutes, and the report says whether the transfer gain shrinks as target data grows.

The target is /work/shared/data/tinyshakespeare.txt (or `--target FILE`) when that file is
there, else attnlab's cached tiny Shakespeare, else the built-in `licenses` text. The study
runs in one process with `--threads` torch threads into a fresh folder (or `--out DIR`: a
folder of an earlier, interrupted benchmark resumes; its finished runs are then not timed
again, so time a fresh folder).

Usage:
    python benchmarks/bench_transfer.py [--threads 2] [--out DIR] [--target FILE] [--seeds 0,1] [--quick]
It prints a markdown report (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_gpt import machine  # noqa: E402

GOAL_SECONDS = 10 * 60.0
SHARED_SHAKESPEARE = Path("/work/shared/data/tinyshakespeare.txt")


def report(args: argparse.Namespace, out: dict, wall: float, command: str) -> str:
    rows = out["rows"]
    trained = sum(r["status"] != "skipped (finished before)" for r in rows)
    trend = out["trend"]
    slope = trend["slope_per_decade"]
    slope = "one size: no slope" if slope is None else f"slope {slope:+.3f} nats per tenfold more target data"
    lines = [
        f"### Transfer study, {'quick' if args.quick else 'default'} settings ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `{command}`.",
        "",
        out["report"].rstrip(),
        "",
        f"Whole study: {wall:.0f} s ({wall / 60:.1f} min) for {len(rows)} runs ({trained} trained now); "
        f"training steps alone {sum(float(r['train_seconds'] or 0) for r in rows):.0f} s.",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| whole study about {GOAL_SECONDS / 60:.0f} min on 2 cores | {wall / 60:.1f} min | "
        f"{'yes' if wall <= GOAL_SECONDS * 1.1 else 'no'} |",
        f"| the report computes whether the gain shrinks with target data | shrinks: {trend['shrinks']} "
        f"({slope}) | yes |",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the goal's machine)")
    p.add_argument("--out", default=None, help="the study folder (default: a fresh temporary folder)")
    p.add_argument("--target", default=None, help=f"the target text (default {SHARED_SHAKESPEARE} when present)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the study's, 0,1)")
    p.add_argument("--quick", action="store_true", help="the tiny study: a smoke test of this script")
    args = p.parse_args()

    import torch

    from attnlab.train.transfer import TransferConfig, run_transfer_study

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    target = args.target or (str(SHARED_SHAKESPEARE) if SHARED_SHAKESPEARE.is_file() else None)
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None
    config = TransferConfig(target=target, seeds=seeds, quick=args.quick, device="cpu", progress=False)
    command = "python benchmarks/bench_transfer.py" + (" --quick" if args.quick else "")
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        folder = Path(args.out) if args.out else Path(tmp) / "study"
        t0 = time.perf_counter()
        out = run_transfer_study(folder, config)
        wall = time.perf_counter() - t0
        print(report(args, out, wall, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
