"""Benchmark: the `baby` GPT on tiny Shakespeare with nanoGPT's CPU-example settings.

Settings (nanoGPT README, "I only have a macbook"): character level, 90/10 split,
4 layers, 4 heads, 128 dims, context 64, batch 12, 2,000 iterations, lr 1e-3 with
100 warmup steps and cosine decay to 1e-4, AdamW betas (0.9, 0.99), weight decay 0.1,
gradient clipping 1.0, dropout 0.

Three parts, each in its own process so that peak memory (RSS) is per part:
  train-attnlab    attnlab's GPT through the CLI's library call (Trainer + TorchEngine):
                   validation loss every 250 iterations (200 fixed batches), ms/iter,
                   tokens/s, peak RSS.
  train-reference  a straightforward PyTorch implementation (benchmarks/reference_gpt.py:
                   a Python loop over per-head modules) trained on the same batches with
                   the same optimizer and schedule.
  speed            both models' training steps timed side by side in one process,
                   interleaved in rounds on identical batches; medians and the ratio.

Usage:
    python benchmarks/bench_gpt.py [--data PATH] [--iters 2000] [--threads 2]
It prints a markdown report (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
SEQ_LEN, BATCH = 64, 12


def train_config(iters: int):
    from attnlab.train.trainer import TrainConfig

    return TrainConfig(
        batch_size=BATCH,
        max_iters=iters,
        lr=1e-3,
        min_lr=1e-4,
        warmup_iters=100,
        lr_decay_iters=iters,
        beta1=0.9,
        beta2=0.99,
        weight_decay=0.1,
        grad_clip=1.0,
        eval_interval=250,
        eval_iters=200,
        log_interval=50,
        seed=1337,
        device="cpu",
        precision="fp32",
        progress=False,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def load_data(path: str):
    import numpy as np

    from attnlab.data.text import LMData, load_text
    from attnlab.tokenizers import CharTokenizer

    text = load_text(path).text
    tok = CharTokenizer.train(text)
    return tok, LMData(np.asarray(tok.encode(text)), SEQ_LEN, 0.1)


def part_train_attnlab(args) -> dict:
    from attnlab.models.gpt_config import GPTConfig
    from attnlab.train.recipes import DataConfig, train_language_model

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        results = train_language_model(
            Path(tmp) / "run",
            data=DataConfig(source=args.data),
            model=GPTConfig.from_name("baby"),
            train=train_config(args.iters),
            write_plots=False,
        )
        wall = time.perf_counter() - t0
        from attnlab.train.trainer import read_metrics

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


def part_train_reference(args) -> dict:
    import numpy as np
    import torch
    from reference_gpt import ReferenceGPT

    from attnlab.train.engine import decay_groups

    cfg = train_config(args.iters)
    tok, data = load_data(args.data)
    torch.manual_seed(cfg.seed)
    model = ReferenceGPT(tok.vocab_size)
    opt = torch.optim.AdamW(
        decay_groups(list(model.named_parameters()), cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)
    )
    eval_batches = data.eval_batches(cfg.batch_size, cfg.eval_iters, "val", cfg.seed)

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [
                float(model(torch.from_numpy(b["input_ids"]), torch.from_numpy(b["targets"]))[1]) for b in eval_batches
            ]
        model.train()
        return float(np.mean(losses))

    curve = {0: evaluate()}
    train_seconds = 0.0
    for step in range(cfg.max_iters):
        t0 = time.perf_counter()
        batch = data.train_batch(cfg.batch_size, np.random.default_rng((cfg.seed, 0, step)))
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(step)
        _, loss = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["targets"]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss)
        train_seconds += time.perf_counter() - t0
        if (step + 1) % cfg.eval_interval == 0 or step + 1 == cfg.max_iters:
            curve[step + 1] = evaluate()
    return {
        "val_curve": curve,
        "ms_per_iter": 1000 * train_seconds / cfg.max_iters,
        "tokens_per_sec": cfg.max_iters * BATCH * SEQ_LEN / train_seconds,
        "train_seconds": train_seconds,
        "params": sum(p.numel() for p in model.parameters()),
        "peak_rss_mb": peak_rss_mb(),
    }


def part_speed(args) -> dict:
    import numpy as np
    import torch
    from reference_gpt import ReferenceGPT

    from attnlab.models.gpt import GPT, GPTConfig
    from attnlab.train.engine import TorchEngine, decay_groups

    tok, data = load_data(args.data)
    torch.manual_seed(0)
    ours = TorchEngine(
        GPT(GPTConfig.from_name("baby", vocab_size=tok.vocab_size)),
        lr=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.1,
        grad_clip=1.0,
        device="cpu",
        precision="fp32",
        distributed=False,
    )
    ref = ReferenceGPT(tok.vocab_size)
    ref_opt = torch.optim.AdamW(decay_groups(list(ref.named_parameters()), 0.1), lr=1e-3, betas=(0.9, 0.99))

    def ref_step(batch):
        _, loss = ref(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["targets"]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        ref_opt.step()
        ref_opt.zero_grad(set_to_none=True)
        return float(loss)

    batches = [data.train_batch(BATCH, np.random.default_rng(i)) for i in range(args.steps_per_round)]
    for b in batches[:10]:  # warm-up both
        ours.train_step([b], 1e-3)
        ref_step(b)
    rounds = {"attnlab": [], "reference": []}
    for r in range(args.rounds):
        order = [("attnlab", lambda b: ours.train_step([b], 1e-3)), ("reference", ref_step)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            t0 = time.perf_counter()
            for b in batches:
                fn(b)
            rounds[name].append(1000 * (time.perf_counter() - t0) / len(batches))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    return {
        "rounds_ms_per_iter": rounds,
        "median_ms_per_iter": med,
        "median_tokens_per_sec": {k: BATCH * SEQ_LEN * 1000 / v for k, v in med.items()},
        "speedup": med["reference"] / med["attnlab"],
    }


PARTS = {"train-attnlab": part_train_attnlab, "train-reference": part_train_reference, "speed": part_speed}


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


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    import torch

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def report(args, a: dict, r: dict, s: dict) -> str:
    lines = [
        f"### GPT `baby` on tiny Shakespeare ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `python benchmarks/bench_gpt.py`.",
        "",
        "Validation loss (200 fixed batches of 12 x 64 from the last 10% of the text):",
        "",
        "| iteration | " + " | ".join(str(k) for k in sorted(a["val_curve"], key=int)) + " |",
        "|---|" + "---|" * len(a["val_curve"]),
        "| attnlab GPT | " + " | ".join(f"{a['val_curve'][k]:.4f}" for k in sorted(a["val_curve"], key=int)) + " |",
        "| straightforward PyTorch | "
        + " | ".join(f"{r['val_curve'][k]:.4f}" for k in sorted(r["val_curve"], key=int))
        + " |",
        "",
        "| model | parameters | ms/iteration (full training) | tokens/s (full training) | peak RSS |",
        "|---|---|---|---|---|",
        f"| attnlab GPT | {a['params']:,} | {a['ms_per_iter']:.1f} | {a['tokens_per_sec']:,.0f} | {a['peak_rss_mb']:.0f} MB |",
        f"| straightforward PyTorch | {r['params']:,} | {r['ms_per_iter']:.1f} | {r['tokens_per_sec']:,.0f} | {r['peak_rss_mb']:.0f} MB |",
        "",
        f"Side by side in one process ({args.rounds} interleaved rounds of {args.steps_per_round} steps on identical batches, medians):",
        "",
        "| model | ms/iteration | tokens/s |",
        "|---|---|---|",
    ]
    for name in ("attnlab", "reference"):
        label = "attnlab GPT" if name == "attnlab" else "straightforward PyTorch"
        lines.append(f"| {label} | {s['median_ms_per_iter'][name]:.1f} | {s['median_tokens_per_sec'][name]:,.0f} |")
    lines += ["", f"attnlab is **{s['speedup']:.2f}x** the straightforward implementation's throughput."]
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
        sys.path.insert(0, str(HERE))
        print(json.dumps(PARTS[args.part](args)))
        return
    a = run_part("train-attnlab", args)
    r = run_part("train-reference", args)
    s = run_part("speed", args)
    print(report(args, a, r, s))


if __name__ == "__main__":
    main()
