"""Benchmark: point-cloud tokenizations on the procedural shapes, on 2 CPU threads.

Goal (issue 16, section 1): on the procedural set (`attnlab.data.points.make_shapes`, data
seed 0: 2,000 train / 400 test clouds of 192-256 points, 8 classes), the patch-token
transformer reaches >= 95% test accuracy in <= 3 minutes of training on 2 cores; PointNet,
the per-point transformer and the fixed-order MLP are reported beside it. Every model is
trained with several seeds (initialisation, batch order, augmentation; the data stay the
same) and reported as mean ± standard deviation.

Each run goes through `attnlab.compare.points.compare_points`, the code behind
`attnlab compare points`, with each model's default recipe (`DEFAULT_POINT_RECIPES`).
Prints one markdown table; figures, results.json and checkpoints go to --out/seed-N.

    python benchmarks/bench_points.py                       # 3 seeds, every model
    python benchmarks/bench_points.py --seeds 0 --models patch
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_ACCURACY = 0.95  # the patch transformer's test accuracy
TIME_LIMIT_SECONDS = 180.0  # its training time


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="patch,point,pointnet,mlp", help="models to train (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--data", default="shapes", help="shapes [default], modelnet10, modelnet40 or a path")
    parser.add_argument(
        "--out",
        default=str(REPO / "runs" / "bench-points"),
        help="folder for figures and models (default runs/bench-points)",
    )
    args = parser.parse_args(argv)

    import torch

    from attnlab.compare.points import PointsCompareConfig, compare_points

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    print(
        f"# Point-cloud benchmark: {args.threads} torch threads, torch {torch.__version__}, {_cpu_name()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    runs = []
    for seed in seeds:
        config = PointsCompareConfig(models=args.models, data=args.data, seed=seed, device="cpu", progress=False)
        runs.append(compare_points(config, Path(args.out) / f"seed-{seed}"))
    d = runs[0]["data"]
    print(
        f"## {d['name']}: {d['num_train']:,} train / {d['num_test']:,} test clouds, "
        f"{d['min_points']}-{d['max_points']} points, seeds {', '.join(map(str, seeds))}\n"
    )
    print("| model | tokenization | parameters | epochs | training time (s) | test accuracy | goal | met |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for name, first in runs[0]["models"].items():
        accs = [r["models"][name]["test_accuracy"] for r in runs]
        secs = [r["models"][name]["train_seconds"] for r in runs]
        acc, acc_sd = _mean_std(accs)
        sec, sec_sd = _mean_std(secs)
        goal, met = "", ""
        if name == "patch" and args.data == "shapes":
            goal = f">= {100 * GOAL_ACCURACY:.0f}% in <= {TIME_LIMIT_SECONDS:.0f} s"
            met = "yes" if min(accs) >= GOAL_ACCURACY and max(secs) <= TIME_LIMIT_SECONDS else "NO"
        print(
            f"| {name} | {first['tokenization']} | {first['parameters']:,} | {first['epochs']} | "
            f"{sec:.1f} ± {sec_sd:.1f} | {100 * acc:.2f}% ± {100 * acc_sd:.2f} | {goal} | {met} |"
        )
    print(f"\nCommand: python benchmarks/bench_points.py --seeds {args.seeds} --models {args.models}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
