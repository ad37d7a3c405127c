"""Benchmark: the induction-head lab (`attnlab interp induction`), default settings, 5 seeds + the 1-layer control.

Goal (issue 17, sec. 3): on 2 CPU cores the phase change happens and is detected
automatically within 3 minutes on at least 4 of 5 seeds, and mean-ablating the found heads
confirms the circuit: the induction head (layer 1) and the previous-token head (layer 0,
K-composition) each push the repeated-half loss back towards the first-half loss; the
1-layer control never shows the phase change.

Each run trains in its own process (`--part run`), so one run's threads and memory do not
touch the next; `InductionConfig()` is the library's default unless flags override it.

Usage:
    python benchmarks/bench_induction.py [--seeds 0,1,2,3,4] [--threads 2] [--steps N] [--quick]
It prints a markdown report (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_gpt import machine  # noqa: E402

GOAL_SECONDS = 180.0


def part_run(args) -> dict:
    import numpy as np

    from attnlab.interp.induction import InductionConfig, train_induction

    overrides = {"seed": args.seed, "num_layers": args.layers}
    if args.steps:
        overrides["steps"] = args.steps
    config = InductionConfig.quick(**overrides) if args.quick else InductionConfig(**overrides)
    t0 = time.perf_counter()
    _, r = train_induction(config)
    wall = time.perf_counter() - t0
    before, after = r.scores_at(0), r.scores_at(-1)
    return {
        "seed": args.seed,
        "layers": args.layers,
        "phase_change_step": r.phase_change_step,
        "phase_change_seconds": r.phase_change_seconds,
        "train_seconds": r.train_seconds,
        "wall_seconds": wall,
        "trained_steps": r.trained_steps,
        "induction_head": r.induction_head,
        "previous_token_head": r.previous_token_head,
        "induction_before": float(np.max(before["induction"][-1])),
        "induction_after": float(np.max(after["induction"][-1])),
        "previous_before": float(np.max(before["previous_token"][0])),
        "previous_after": float(np.max(after["previous_token"][0])),
        "ablations": r.ablations,
    }


def run_part(seed: int, layers: int, args) -> dict:
    cmd = [sys.executable, __file__, "--part", "run", "--seed", str(seed), "--layers", str(layers)]
    cmd += ["--threads", str(args.threads)] + (["--steps", str(args.steps)] if args.steps else [])
    cmd += ["--quick"] if args.quick else []
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise SystemExit(f"seed {seed} ({layers} layers) failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _f(v, spec=".3f") -> str:
    return "-" if v is None else format(v, spec)


def _abl(r: dict, name: str) -> dict:
    return next((a for a in r["ablations"] if a["ablated"] == name), {})


def report(args, runs: list[dict], controls: list[dict]) -> str:
    command = "python benchmarks/bench_induction.py" + (" --quick" if args.quick else "")
    lines = [
        f"### Induction-head lab ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. Command: `{command}`.",
        "Settings: `InductionConfig()` defaults" + (" (`--quick`)" if args.quick else "") + "; seconds are training"
        " wall-clock seconds to the detected phase change (evaluations excluded).",
        "",
        "| seed | phase change (step) | seconds | induction head | score before -> after | prev-token head |"
        " score before -> after | first / repeated loss | ablate induction head | ablate prev-token head |"
        " ablate all L1 induction heads |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        base = _abl(r, "none")
        lines.append(
            f"| {r['seed']} | {_f(r['phase_change_step'], 'd')} | {_f(r['phase_change_seconds'], '.1f')} | "
            f"L{r['induction_head'][0]}H{r['induction_head'][1]} | {r['induction_before']:.2f} -> {r['induction_after']:.2f} | "
            f"L{r['previous_token_head'][0]}H{r['previous_token_head'][1]} | "
            f"{r['previous_before']:.2f} -> {r['previous_after']:.2f} | "
            f"{base['first_half_loss']:.3f} / {base['repeated_half_loss']:.3f} | "
            f"{_f(_abl(r, 'induction_head').get('repeated_half_loss'))} | "
            f"{_f(_abl(r, 'previous_token_head').get('repeated_half_loss'))} | "
            f"{_f(_abl(r, 'last_layer_induction_heads').get('repeated_half_loss'))} |"
        )
    ok = [r for r in runs if r["phase_change_seconds"] is not None and r["phase_change_seconds"] <= GOAL_SECONDS]
    lines += ["", f"Phase change within {GOAL_SECONDS:.0f} s: **{len(ok)} of {len(runs)}** seeds.", ""]
    lines += [
        "1-layer control (same seeds and steps):",
        "",
        "| seed | phase change | steps trained | first / repeated loss | top induction score |",
        "|---|---|---|---|---|",
    ]
    for r in controls:
        base = _abl(r, "none")
        lines.append(
            f"| {r['seed']} | {_f(r['phase_change_step'], 'd')} | {r['trained_steps']} | "
            f"{base['first_half_loss']:.3f} / {base['repeated_half_loss']:.3f} | {r['induction_after']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="override InductionConfig.steps")
    p.add_argument("--quick", action="store_true", help="InductionConfig.quick(): a smoke test of this script")
    p.add_argument("--no-control", action="store_true")
    p.add_argument("--part", choices=["run"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, default=2)
    args = p.parse_args()
    if args.part:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(part_run(args)))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [run_part(s, 2, args) for s in seeds]
    controls = [] if args.no_control else [run_part(s, 1, args) for s in seeds]
    print(report(args, runs, controls))


if __name__ == "__main__":
    main()
