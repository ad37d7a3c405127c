"""Benchmark: the LLaMA-style model beside the GPT, `baby` size, tiny Shakespeare, nanoGPT's CPU settings.

Settings (nanoGPT README, "I only have a macbook"): character level, 90/10 split, 4 layers,
4 heads, 128 dims, context 64, batch 12, 2,000 iterations, lr 1e-3 with 100 warmup steps and
cosine decay to 1e-4, AdamW betas (0.9, 0.99), weight decay 0.1, gradient clipping 1.0,
dropout 0. Both models train on the same batches in the same order (the Trainer's per-step
generator), through the same library calls (Trainer + TorchEngine).

  GPT    `GPTConfig.from_name("baby")`: LayerNorm, GELU MLP, rotary positions, tied head.
  LLaMA  `LlamaConfig.from_name("baby")`: RMSNorm, SwiGLU, rotary, grouped-query attention
         (its preset's num_kv_heads), no biases.

Parts, each in its own process so that peak memory (RSS) is per part:
  train-gpt, train-llama   2,000 iterations each: validation loss every 250 iterations
                           (200 fixed batches), ms/iteration, tokens/s, peak RSS.
  speed                    both models' training steps timed side by side in one process,
                           alternating rounds on identical batches; medians and the ratio.

Usage:
    python benchmarks/bench_llama.py [--data PATH] [--iters 2000] [--threads 2]
It prints a markdown report (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_gpt import BATCH, DEFAULT_DATA, SEQ_LEN, load_data, machine, peak_rss_mb, train_config  # noqa: E402

LABELS = {"gpt": "GPT (`baby`)", "llama": "LLaMA-style (`baby`)"}


def build_model(arch: str, vocab_size: int):
    """The registry's `arch` (its model_type) at its `baby` preset, for this vocabulary."""
    from attnlab.models import registry

    config = registry.config_class(arch).from_name("baby", vocab_size=vocab_size)
    return registry.model_class(arch)(config)


def engine_for(model):
    from attnlab.train.engine import TorchEngine

    return TorchEngine(
        model,
        lr=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.1,
        grad_clip=1.0,
        device="cpu",
        precision="fp32",
        distributed=False,
    )


def part_train(arch: str, args) -> dict:
    import torch

    from attnlab.train.trainer import Trainer, read_metrics

    cfg = train_config(args.iters)
    tok, data = load_data(args.data)
    torch.manual_seed(cfg.seed)
    eng = engine_for(build_model(arch, tok.vocab_size))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        results = Trainer(eng, data, cfg, Path(tmp) / "run", tokenizer=tok).fit()
        wall = time.perf_counter() - t0
        curve = {r["step"]: r["val_loss"] for r in read_metrics(Path(tmp) / "run") if "val_loss" in r}
    return {
        "val_curve": curve,
        "ms_per_iter": results["ms_per_iter"],
        "tokens_per_sec": results["tokens_per_sec"],
        "train_seconds": results["train_seconds"],
        "wall_seconds": wall,
        "params": results["num_parameters"],
        "peak_rss_mb": peak_rss_mb(),
    }


def part_speed(args) -> dict:
    import numpy as np
    import torch

    tok, data = load_data(args.data)
    engines = {}
    for arch in ("gpt", "llama"):
        torch.manual_seed(0)
        engines[arch] = engine_for(build_model(arch, tok.vocab_size))
    batches = [data.train_batch(BATCH, np.random.default_rng(i)) for i in range(args.steps_per_round)]
    for b in batches[:10]:  # warm-up both
        for eng in engines.values():
            eng.train_step([b], 1e-3)
    rounds: dict[str, list[float]] = {arch: [] for arch in engines}
    for r in range(args.rounds):
        order = list(engines) if r % 2 == 0 else list(reversed(engines))
        for arch in order:
            t0 = time.perf_counter()
            for b in batches:
                engines[arch].train_step([b], 1e-3)
            rounds[arch].append(1000 * (time.perf_counter() - t0) / len(batches))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    return {
        "rounds_ms_per_iter": rounds,
        "median_ms_per_iter": med,
        "median_tokens_per_sec": {k: BATCH * SEQ_LEN * 1000 / v for k, v in med.items()},
        "ratio": med["gpt"] / med["llama"],
    }


PARTS = {
    "train-gpt": lambda a: part_train("gpt", a),
    "train-llama": lambda a: part_train("llama", a),
    "speed": part_speed,
}


def run_part(part: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--part",
        part,
        "--data",
        args.data,
        "--iters",
        str(args.iters),
        "--threads",
        str(args.threads),
        "--rounds",
        str(args.rounds),
        "--steps-per-round",
        str(args.steps_per_round),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if done.returncode != 0:
        raise SystemExit(f"part {part} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(args, train: dict[str, dict], s: dict) -> str:
    steps = sorted(train["gpt"]["val_curve"], key=int)
    lines = [
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `python benchmarks/bench_llama.py`"
        f" ({time.strftime('%Y-%m-%d')}).",
        "",
        "Validation loss (200 fixed batches of 12 x 64 from the last 10% of the text):",
        "",
        "| iteration | " + " | ".join(str(k) for k in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for arch, r in train.items():
        lines.append(f"| {LABELS[arch]} | " + " | ".join(f"{r['val_curve'][k]:.4f}" for k in steps) + " |")
    lines += [
        "",
        "| model | parameters | ms/iteration (full training) | tokens/s (full training) | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for arch, r in train.items():
        lines.append(
            f"| {LABELS[arch]} | {r['params']:,} | {r['ms_per_iter']:.1f} | {r['tokens_per_sec']:,.0f} | "
            f"{r['peak_rss_mb']:.0f} MB |"
        )
    lines += [
        "",
        f"Side by side in one process ({args.rounds} alternating rounds of {args.steps_per_round} steps on identical"
        " batches, medians):",
        "",
        "| model | ms/iteration | tokens/s |",
        "|---|---|---|",
    ]
    for arch in ("gpt", "llama"):
        lines.append(
            f"| {LABELS[arch]} | {s['median_ms_per_iter'][arch]:.1f} | {s['median_tokens_per_sec'][arch]:,.0f} |"
        )
    lines += ["", f"The LLaMA-style model trains at **{s['ratio']:.2f}x** the GPT's tokens/s."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps-per-round", type=int, default=40)
    p.add_argument("--part", choices=sorted(PARTS))
    args = p.parse_args()
    if args.part:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(PARTS[args.part](args)))
        return
    train = {"gpt": run_part("train-gpt", args), "llama": run_part("train-llama", args)}
    s = run_part("speed", args)
    print(report(args, train, s))


if __name__ == "__main__":
    main()
