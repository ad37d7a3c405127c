"""Benchmark: small data, where attention loses (issue 15, sec. 2), on 2 CPU threads.

The small-data study (`attnlab compare mnist --train-sizes ...`, `attnlab.compare.small_data`)
on the 8,000 / 2,000 split of the official MNIST test set (../shared/data/mnist holds only the
t10k-* files, which `load_images` splits 8,000 train / 2,000 test, stratified): training sizes
250, 500, 1,000, 2,000, 4,000 and 8,000 (nested, stratified subsets of the 8,000), 3 seeds, the
MLP, the ConvNet and the ViT, and the ViT's three remedies as lines of their own (vit+augment,
vit-patch4, vit+conv-stem): 108 runs. Every run has the same budget, max(250 steps, 4 passes
over its set) of 64 images (250 steps at every size up to 4,000, 500 at 8,000); the 2,000 test images are the same for every run. Without the
folder it falls back to mnist5k (4,000 / 1,000, sizes up to 4,000) and says so.

It prints a markdown report (accuracy mean ± std over the seeds at every size, the crossover
of each ViT line with the ConvNet, seconds per line); paste it into benchmarks/RESULTS.md.
The study runs in one process into a fresh folder (or `--out DIR`: a folder of an earlier,
interrupted benchmark resumes; its finished runs are then not timed again).

Usage:
    python benchmarks/bench_small_data.py [--threads 2] [--data FOLDER] [--seeds 0,1,2] [--out DIR] [--quick]
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

SHARED_MNIST = HERE.parent.parent / "shared" / "data" / "mnist"
SIZES = (250, 500, 1000, 2000, 4000, 8000)
MODELS = ("mlp", "cnn", "vit")
REMEDIES = ("augment", "patch4", "conv-stem")


def report(args: argparse.Namespace, out: dict, wall: float, command: str, data: str, note: str) -> str:
    rows = out["rows"]
    trained = sum(r["status"] != "skipped (finished before)" for r in rows)
    seconds: dict[str, float] = {}
    for r in rows:
        seconds[r["line"]] = seconds.get(r["line"], 0.0) + float(r["train_seconds"] or 0.0)
    lines = [
        f"### Small data: accuracy vs training-set size, {'quick' if args.quick else 'default'} study "
        f"({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `{command}`. Data: {data}{note}.",
        "",
        out["report"].rstrip(),
        "",
        "Training seconds per line, all sizes and seeds: "
        + ", ".join(f"{line} {s:.0f} s" for line, s in seconds.items())
        + ".",
        "",
        f"Whole study: {wall:.0f} s ({wall / 60:.1f} min) for {len(rows)} runs ({trained} trained now).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the goal's machine)")
    p.add_argument("--data", default=str(SHARED_MNIST), help="folder of IDX files (default ../shared/data/mnist)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--out", default=None, help="the study folder (default: a fresh temporary folder)")
    p.add_argument("--quick", action="store_true", help="tiny models, sizes 40 and 80, 2 seeds: a smoke test")
    args = p.parse_args(argv)

    import torch

    from attnlab.compare.small_data import SmallDataConfig, run_small_data_study

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    data, note, sizes = args.data, "", SIZES
    if not Path(data).is_dir():
        data, note, sizes = "mnist5k", f" ({args.data} is missing: mnist5k's 4,000 training digits instead)", SIZES[:-1]
    seeds = tuple(int(s) for s in args.seeds.split(","))
    if args.quick:
        sizes, seeds = (40, 80), seeds[:2]
    config = SmallDataConfig(
        task="mnist",
        data=data,
        train_sizes=sizes,
        seeds=seeds,
        models=MODELS,
        vit_remedies=REMEDIES,
        quick=args.quick,
        device="cpu",
        progress=False,
    )
    command = "python benchmarks/bench_small_data.py" + (" --quick" if args.quick else "")
    with tempfile.TemporaryDirectory(prefix="bench-small-data-") as tmp:
        folder = Path(args.out) if args.out else Path(tmp) / "study"
        t0 = time.perf_counter()
        out = run_small_data_study(folder, config)
        wall = time.perf_counter() - t0
        print(report(args, out, wall, command, data, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
