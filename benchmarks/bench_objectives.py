"""Benchmark: pretraining objectives side by side (`attnlab compare objectives`), default study.

Issue 15, sec. 3: a GPT (causal LM), an encoder (masked LM) and an encoder-decoder (span
corruption) of matched size, 500k corpus characters of pretraining each, 3 seeds; each probed
(logistic regression on frozen features) and fine-tuned (300 steps) on CPython
documentation sentences labelled by topic, against the same architectures randomly
initialised. Goal: the whole default study in about 10-12 minutes on 2 CPU cores.

The study runs in one process with `--threads` torch threads into a fresh folder (or
`--out DIR`: a folder of an earlier, interrupted benchmark resumes; its finished runs are
then not timed again, so time a fresh folder).

Usage:
    python benchmarks/bench_objectives.py [--threads 2] [--out DIR] [--seeds 0,1,2] [--tokens 1M] [--quick]
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

GOAL_SECONDS = 12 * 60.0


def report(args: argparse.Namespace, out: dict, wall: float, command: str) -> str:
    rows = out["rows"]
    trained = sum(r["status"] in ("trained", "resumed") for r in rows)
    pre = sum(float(r.get("pretrain_seconds") or 0) for r in rows if r["evaluation"] == "probe")
    fine = sum(float(r.get("finetune_seconds") or 0) for r in rows if r["evaluation"] == "finetune")
    lines = [
        f"### Pretraining objectives, {'quick' if args.quick else 'default'} study ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `{command}`.",
        "",
        out["report"].rstrip(),
        "",
        f"Whole study: {wall:.0f} s ({wall / 60:.1f} min), {trained} runs trained now; pretraining steps "
        f"{pre:.0f} s, fine-tune steps {fine:.0f} s, the rest (features, probes, tables) {wall - pre - fine:.0f} s.",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| whole study <= {GOAL_SECONDS / 60:.0f} min on 2 cores | {wall / 60:.1f} min | "
        f"{'yes' if wall <= GOAL_SECONDS else 'no'} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    from attnlab.compare.objectives import ObjectivesConfig, compare_objectives
    from attnlab.train.scale import parse_tokens

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the goal's machine)")
    parser.add_argument("--out", default=None, help="the study folder (default: a fresh temporary folder)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--tokens", default=None, help="corpus characters each pretraining reads (default 500k)")
    parser.add_argument("--quick", action="store_true", help="the quick study (seconds): checks the script runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    config = ObjectivesConfig(
        seeds=tuple(int(s) for s in args.seeds.split(",")),
        tokens=parse_tokens(args.tokens) if args.tokens else None,
        quick=args.quick,
        device="cpu",
        progress=False,
    )
    command = "attnlab compare objectives --out DIR" + " --quick" * args.quick + f" --seeds {args.seeds}"
    if args.tokens:
        command += f" --tokens {args.tokens}"
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out) if args.out else Path(tmp) / "objectives"
        start = time.perf_counter()
        out = compare_objectives(out_dir, config)
        wall = time.perf_counter() - start
        print(report(args, out, wall, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
