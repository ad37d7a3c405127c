"""NumPy engine vs PyTorch engine: time per training step, and the loss each reaches.

Part 1 times one training step (forward + backward + AdamW) of the NumPy GPT and the
PyTorch GPT side by side. Part 2 (`--train-iters N`, e.g. 2000) trains both engines
through the same library call as `attnlab train --engine numpy|torch` on tiny
Shakespeare with nanoGPT's CPU settings (see bench_gpt.py) and reports the validation
loss each reaches after N iterations.

Not a test (no timing assertions in tests): run it by hand, e.g.

    .venv/bin/python benchmarks/bench_numpy_engine.py --preset baby --iters 30 --train-iters 2000

Both models train the same config in float32 on the same batches; torch uses
`torch.set_num_threads(threads)` and NumPy's BLAS the same number of threads. The two
are timed in alternating rounds so that a busy machine slows both alike; the ratio is
the number to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="baby")
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--vocab-size", type=int, default=65)
    parser.add_argument("--iters", type=int, default=30, help="timed steps per engine (after 3 warm-up steps)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the NumPy step")
    parser.add_argument("--train-iters", type=int, default=0, help="also train both engines this long on --data")
    parser.add_argument(
        "--data", default=None, help="text for --train-iters (default ../shared/data/tinyshakespeare.txt)"
    )
    args = parser.parse_args()

    import numpy as np
    import torch

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None

    from attnlab.models.gpt import GPT, GPTConfig
    from attnlab.scratch.gpt import NumpyGPT
    from attnlab.scratch.optim import AdamW, clip_grad_norm
    from attnlab.train.engine import decay_groups

    torch.set_num_threads(args.threads)
    if threadpool_limits is not None:
        threadpool_limits(args.threads)
    config = GPTConfig.from_name(args.preset, vocab_size=args.vocab_size, dropout=0.0)
    rng = np.random.default_rng(0)
    B, T = args.batch_size, config.max_seq_len
    batches = [
        (rng.integers(0, config.vocab_size, (B, T)), rng.integers(0, config.vocab_size, (B, T))) for _ in range(8)
    ]

    ours = NumpyGPT(config)
    n_opt = AdamW(ours.param_groups(0.1), lr=1e-3, betas=(0.9, 0.99))
    ref = GPT(config)
    t_opt = torch.optim.AdamW(decay_groups(list(ref.named_parameters()), 0.1), lr=1e-3, betas=(0.9, 0.99))
    t_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def numpy_step(i: int) -> None:
        x, y = batches[i % len(batches)]
        _, grads = ours.loss_and_grads(x, y)
        clip_grad_norm(grads, 1.0)
        n_opt.step(grads)

    def torch_step(i: int) -> None:
        x, y = t_batches[i % len(t_batches)]
        loss = ref(x, y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        t_opt.step()
        t_opt.zero_grad(set_to_none=True)

    def timed(step, n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            step(i)
        return (time.perf_counter() - t0) / n * 1000

    for i in range(3):
        numpy_step(i)
        torch_step(i)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        timed(numpy_step, args.iters)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    np_ms, t_ms = [], []
    for _ in range(args.rounds):
        np_ms.append(timed(numpy_step, args.iters))
        t_ms.append(timed(torch_step, args.iters))
    np_med, t_med = statistics.median(np_ms), statistics.median(t_ms)
    print(
        f"preset {args.preset}, batch {B}, context {T}, {ours.num_parameters():,} parameters, "
        f"{args.threads} threads, CPU count {os.cpu_count()}, {args.rounds} alternating rounds of {args.iters} steps"
    )
    print()
    print("| engine | ms/iteration (median of rounds) | rounds |")
    print("|---|---|---|")
    print(f"| NumPy | {np_med:.1f} | {' '.join(f'{v:.1f}' for v in np_ms)} |")
    print(f"| PyTorch | {t_med:.1f} | {' '.join(f'{v:.1f}' for v in t_ms)} |")
    print()
    print(f"NumPy / PyTorch time per iteration: **{np_med / t_med:.2f}x**")
    if args.train_iters:
        train_both(args)


def train_both(args) -> None:
    """Train both engines on the same data, schedule and batches; compare validation losses."""
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_gpt import DEFAULT_DATA, train_config

    from attnlab.models.gpt_config import GPTConfig
    from attnlab.train.recipes import DataConfig, train_language_model
    from attnlab.train.trainer import read_metrics

    data = DataConfig(source=args.data or str(DEFAULT_DATA))
    curves, seconds = {}, {}
    for engine in ("torch", "numpy"):
        with tempfile.TemporaryDirectory() as tmp:
            results = train_language_model(
                Path(tmp) / "run",
                data=data,
                model=GPTConfig.from_name(args.preset),
                train=train_config(args.train_iters),
                engine=engine,
                write_plots=False,
            )
            curves[engine] = {r["step"]: r["val_loss"] for r in read_metrics(Path(tmp) / "run") if "val_loss" in r}
            seconds[engine] = results["train_seconds"]
    steps = sorted(curves["torch"])
    print()
    print(f"Validation loss, {args.train_iters} iterations on {Path(data.source).name} (nanoGPT CPU settings):")
    print()
    print("| engine | " + " | ".join(str(s) for s in steps) + " | training seconds |")
    print("|---|" + "---|" * (len(steps) + 1))
    for engine in ("torch", "numpy"):
        print(f"| {engine} | " + " | ".join(f"{curves[engine][s]:.4f}" for s in steps) + f" | {seconds[engine]:.0f} |")
    final = {e: curves[e][steps[-1]] for e in curves}
    gap = (final["numpy"] - final["torch"]) / final["torch"]
    print()
    print(f"NumPy final validation loss relative to PyTorch's: **{gap:+.2%}**")


if __name__ == "__main__":
    main()
