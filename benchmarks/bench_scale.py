"""Benchmark: the scaling study (`attnlab scale`), default grid, on the embedded corpus.

Goal (issue 15, sec. 1): on 2 CPU cores the whole study (5 GPT sizes x 4 token budgets,
the fit with its bootstrap, the held-out check and the figures) takes at most 15 minutes,
and the law fitted without the largest-compute run predicts that run's validation loss
within 3%.

The study runs in one process with `--threads` torch threads into a fresh folder (or
`--out DIR`: a folder of an earlier, interrupted benchmark resumes; its finished runs are
then not timed again, so time a fresh folder).

Usage:
    python benchmarks/bench_scale.py [--threads 2] [--out DIR] [--seeds 0] [--quick]
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

GOAL_SECONDS = 15 * 60.0
GOAL_ERROR = 0.03


def report(args: argparse.Namespace, out: dict, wall: float, command: str) -> str:
    held = out["analysis"]["held_out"]
    rows = out["rows"]
    trained = sum(r["status"] != "skipped (finished before)" for r in rows)
    lines = [
        f"### Scaling study, {'quick' if args.quick else 'default'} grid ({time.strftime('%Y-%m-%d')})",
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
        f"| whole study <= {GOAL_SECONDS / 60:.0f} min on 2 cores | {wall / 60:.1f} min | "
        f"{'yes' if wall <= GOAL_SECONDS else 'no'} |",
    ]
    if held is not None:
        err = abs(held.relative_error)
        lines.append(
            f"| held-out prediction within {GOAL_ERROR:.0%} | {held.predicted:.4f} predicted vs {held.measured:.4f} "
            f"measured ({held.relative_error:+.2%}) | {'yes' if err <= GOAL_ERROR else 'no'} |"
        )
    else:
        lines.append(f"| held-out prediction within {GOAL_ERROR:.0%} | no held-out check (too few runs) | no |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the goal's machine)")
    p.add_argument("--out", default=None, help="the study folder (default: a fresh temporary folder)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--quick", action="store_true", help="the tiny grid: a smoke test of this script")
    args = p.parse_args()

    import torch

    from attnlab.train.scale import ScaleConfig, run_scaling_study

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = ScaleConfig(
        seeds=tuple(int(s) for s in args.seeds.split(",")), quick=args.quick, device="cpu", progress=False
    )
    command = "python benchmarks/bench_scale.py" + (" --quick" if args.quick else "")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(args.out) if args.out else Path(tmp) / "study"
        t0 = time.perf_counter()
        out = run_scaling_study(folder, config)
        wall = time.perf_counter() - t0
        print(report(args, out, wall, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
