"""Benchmark: the cost of attnlab's hook points when no hook is attached, and parity with TransformerLens (issue 17).

"Zero cost when no hook is attached": the same timings of the code before hook points existed
(a `git worktree` of `--baseline-ref`) and of this checkout, side by side, in alternating
rounds; each round runs in a fresh subprocess that imports attnlab from one tree only, with
the same torch threads (`--threads`, default 2).

  train     one training step of the `baby` GPT (forward + backward + AdamW) on a batch of
            32 x 64 tokens; ms/step.
  generate  KV-cache generation at batch 1 (greedy, 8-token prompt, 48 new tokens, the
            `baby` context of 64 never slides); ms/token.

Informational, this checkout only: a forward of the same batch with `run_with_cache`
(every hook point cached: the hooked, step-by-step attention path) against a plain forward;
and the max abs differences to TransformerLens of the logits and the cached activations
(tests/interp/test_transformer_lens_parity.py, a GPT-2-shaped attnlab GPT exported to GPT-2).

Baseline ref: by default the parent of the commit that added src/attnlab/nn/hooks.py, or
`HEAD` while the hook points are not committed yet. The ref and its commit are recorded.

Usage:
    python benchmarks/bench_interp.py [--baseline-ref REF] [--threads 2] [--rounds 8]
                                      [--steps-per-round 30] [--gen-repeats 3] [--quick]
It prints a markdown report (paste it into benchmarks/RESULTS.md). `--quick` (one short
round) only checks that the script works; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOOKS_FILE = "src/attnlab/nn/hooks.py"
PARITY_TEST = REPO / "tests" / "interp" / "test_transformer_lens_parity.py"
BATCH, SEQ_LEN, VOCAB = 32, 64, 65  # the `baby` context; tiny Shakespeare's character vocabulary
PROMPT_LEN, NEW_TOKENS = 8, 48


# ---------------------------------------------------------------------------
# Workers: run in a subprocess with one tree's src/ first on sys.path
# ---------------------------------------------------------------------------


def _worker_setup(args) -> None:
    sys.path.insert(0, args.src)
    import torch

    torch.set_num_threads(args.threads)
    import attnlab

    if not Path(attnlab.__file__).resolve().is_relative_to(Path(args.src).resolve()):
        raise SystemExit(f"imported attnlab from {attnlab.__file__}, not from {args.src}")


def _baby_gpt():
    import torch

    from attnlab.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig.from_name("baby", vocab_size=VOCAB))


def _batch():
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ_LEN + 1), generator=g)
    return ids[:, :-1], ids[:, 1:]


def worker_train(args) -> dict:
    import torch

    model = _baby_gpt().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    x, y = _batch()

    def step() -> None:
        loss = model(x, y).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"ms": times}


def worker_generate(args) -> dict:

    from attnlab.decoding.causal import generate

    model = _baby_gpt().eval()
    prompt = _batch()[0][:1, :PROMPT_LEN]  # (1, 8)
    settings = dict(max_new_tokens=NEW_TOKENS, temperature=0.0, use_cache=True)
    generate(model, prompt, **settings)  # warm-up
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        out = generate(model, prompt, **settings)
        times.append((time.perf_counter() - t0) * 1e3 / (out.size(1) - PROMPT_LEN))
    return {"ms": times}


def worker_hooked(args) -> dict:
    """Plain forward vs `run_with_cache` (all hook points), no gradients, alternating."""
    import torch

    from attnlab.interp import hook_names, run_with_cache

    model = _baby_gpt().eval()
    x, _ = _batch()
    plain, cached = [], []
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
            run_with_cache(model, x)
        for _ in range(args.steps):
            t0 = time.perf_counter()
            model(x)
            plain.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            _, cache = run_with_cache(model, x)
            cached.append((time.perf_counter() - t0) * 1e3)
    size = sum(t.numel() * t.element_size() for t in cache.values())
    return {"plain": plain, "cached": cached, "points": len(hook_names(model)), "cache_mb": size / 2**20}


WORKERS = {"train": worker_train, "generate": worker_generate, "hooked": worker_hooked}


# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def default_baseline_ref() -> str:
    """The parent of the commit that added the hook points, or HEAD while they are uncommitted."""
    added = git("log", "--diff-filter=A", "--format=%H", "--", HOOKS_FILE).splitlines()
    return f"{added[-1]}^" if added else "HEAD"


def run_worker(part: str, src: Path, args, steps: int) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        part,
        "--src",
        str(src),
        "--threads",
        str(args.threads),
        "--steps",
        str(steps),
        "--warmup",
        str(args.warmup),
    ]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker {part} ({src}) failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def side_by_side(part: str, trees: dict[str, Path], args, steps: int) -> dict[str, list[float]]:
    """Per-round medians of each tree, rounds alternating which tree goes first."""
    medians: dict[str, list[float]] = {name: [] for name in trees}
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            medians[name].append(statistics.median(run_worker(part, trees[name], args, steps)["ms"]))
        print(
            f"[{part}] round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {medians[n][-1]:.2f} ms" for n in trees),
            file=sys.stderr,
        )
    return medians


def parity_diffs() -> dict[str, float] | str:
    """TransformerLens max abs differences from the parity test's helper, or why there are none."""
    if importlib.util.find_spec("transformer_lens") is None:
        return "transformer-lens is not installed"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO / "src"))
    spec = importlib.util.spec_from_file_location("tl_parity", PARITY_TEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parity_max_abs_diffs()


def grouped(diffs: dict[str, float]) -> list[tuple[str, float]]:
    """Max over layers: `blocks.{i}.x` -> `blocks.*.x`, in first-seen order."""
    out: dict[str, float] = {}
    for name, value in diffs.items():
        parts = name.split(".")
        key = ".".join("*" if p.isdigit() else p for p in parts)
        out[key] = max(out.get(key, 0.0), value)
    return list(out.items())


def report(args, ref: str, commit: str, current: str, train, gen, hooked, parity) -> str:
    sys.path.insert(0, str(HERE))
    from bench_gpt import machine

    def row(label: str, unit: str, m: dict[str, list[float]]) -> str:
        base, new = statistics.median(m["baseline"]), statistics.median(m["current"])
        return f"| {label} | {base:.2f} {unit} | {new:.2f} {unit} | {new / base:.3f}x |"

    lines = [
        f"### Hook overhead and TransformerLens parity ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `{' '.join(['python', *sys.argv])}`.",
        f"Baseline: `{ref}` = {commit[:12]} (before hook points); current: {current}.",
        "",
        f"Side by side ({args.rounds} alternating rounds, each a fresh process; medians of the round medians):",
        "",
        "| what | baseline (no hook points) | current (hook points, none attached) | ratio |",
        "|---|---|---|---|",
        row(f"`baby` GPT training step, batch {BATCH} x {SEQ_LEN} (forward + backward + AdamW)", "ms", train),
        row(f"KV-cache generation, batch 1, {NEW_TOKENS} tokens after {PROMPT_LEN}", "ms/token", gen),
        "",
    ]
    plain, cached = statistics.median(hooked["plain"]), statistics.median(hooked["cached"])
    lines += [
        "Informational (current only): a no-grad forward of the same batch, plain vs `run_with_cache` "
        f"(all {hooked['points']} hook points, {hooked['cache_mb']:.1f} MB cached; the step-by-step attention path):",
        "",
        "| plain forward | `run_with_cache` | ratio |",
        "|---|---|---|",
        f"| {plain:.2f} ms | {cached:.2f} ms | {cached / plain:.2f}x |",
        "",
    ]
    if isinstance(parity, str):
        lines += [f"TransformerLens parity: not measured ({parity}).", ""]
    else:
        lines += [
            "TransformerLens parity (tests/interp/test_transformer_lens_parity.py; max abs difference, max over layers):",
            "",
            "| ours | max abs diff |",
            "|---|---|",
            *[f"| `{name}` | {value:.2e} |" for name, value in grouped(parity)],
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline-ref", default=None, help="git ref of the code before hook points (default: see above)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--steps-per-round", type=int, default=30, help="timed training steps per round")
    p.add_argument("--gen-repeats", type=int, default=3, help="timed generations per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-parity", action="store_true", help="skip the TransformerLens comparison")
    p.add_argument("--quick", action="store_true", help="one short round: checks the script, measures nothing")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--src", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        _worker_setup(args)
        print(json.dumps(WORKERS[args.worker](args)))
        return
    if args.quick:
        args.rounds, args.steps_per_round, args.gen_repeats, args.warmup = 1, 2, 1, 1

    ref = args.baseline_ref or default_baseline_ref()
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    dirty = bool(git("status", "--porcelain", "--", "src"))
    current = f"{git('rev-parse', '--short=12', 'HEAD')}{' + uncommitted changes in src/' if dirty else ''}"
    with tempfile.TemporaryDirectory(prefix="attnlab-bench-interp-") as tmp:
        worktree = Path(tmp) / "baseline"
        git("worktree", "add", "--detach", str(worktree), commit)
        try:
            if (worktree / HOOKS_FILE).exists():
                print(f"warning: the baseline {ref} already has {HOOKS_FILE}", file=sys.stderr)
            trees = {"baseline": worktree / "src", "current": REPO / "src"}
            train = side_by_side("train", trees, args, args.steps_per_round)
            gen = side_by_side("generate", trees, args, args.gen_repeats)
        finally:
            git("worktree", "remove", "--force", str(worktree))
    hooked = run_worker("hooked", REPO / "src", args, args.steps_per_round)
    parity = "skipped (--no-parity)" if args.no_parity else parity_diffs()
    print(report(args, ref, commit, current, train, gen, hooked, parity))


if __name__ == "__main__":
    main()
