"""`attnlab interp induction`: train attention-only transformers until an induction head forms.

    attnlab interp induction --out DIR [--seeds 0,1,2,3,4] [--layers 2] [--control] [--steps N] [--quick]

Each seed is its own run folder (DIR/seed-0, ...; the 1-layer control of --control in
DIR/control-seed-0, ...), written by `attnlab.interp.induction.run_induction_lab`: a
finished folder is skipped, so running the command again resumes where it stopped.
DIR/summary.csv holds one row per run; the summary table is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from attnlab import limits
from attnlab.limits import int_arg

MAX_SEEDS = 100


def _seeds(text: str) -> tuple[int, ...]:
    parts = [t for t in text.split(",") if t.strip()]
    if not parts or len(parts) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"give 1 to {MAX_SEEDS} comma-separated seeds such as 0,1,2, got {text!r}")
    try:
        seeds = tuple(limits.check_seed(limits.parse_int(t, "each seed"), "each seed") for t in parts)
    except Exception as e:  # ConfigError with the one-line reason
        raise argparse.ArgumentTypeError(str(e)) from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be different, got {text!r}")
    return seeds


def register(actions: argparse._SubParsersAction) -> None:
    """Add `induction` to the `attnlab interp` group's subparsers."""
    p = actions.add_parser(
        "induction",
        help="the induction-head lab: train a 2-layer attention-only model, watch the phase change, ablate",
        description=(
            "Train a 2-layer attention-only transformer on random tokens with repeats (Olsson et al. 2022), "
            "detect the phase change (repeated-half loss falls far below first-half loss), then mean-ablate the "
            "induction head and the previous-token head. Writes per seed: checkpoint/, curves.csv, "
            "head_scores.csv, ablations.csv, loss_curves.png, head_scores.png, induction_pattern.png, "
            "results.json; and DIR/summary.csv. Finished seeds are skipped when run again."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for one run folder per seed (created)")
    p.add_argument("--seeds", type=_seeds, default=(0,), help="comma-separated seeds, one run each (default 0)")
    p.add_argument(
        "--layers", type=int_arg(1, 8, name="--layers"), default=2, help="attention-only layers, 1 to 8 (default 2)"
    )
    p.add_argument("--control", action="store_true", help="also train the 1-layer control for every seed")
    p.add_argument(
        "--steps",
        type=int_arg(1, limits.MAX_ITERS, name="--steps"),
        default=None,
        help="the most training steps (default 3,000; --quick 1,500)",
    )
    p.add_argument(
        "--quick", action="store_true", help="a smaller setting for smoke tests (it may not show the phase change)"
    )
    p.add_argument("--device", default="cpu", help="cpu [default], auto, cuda, cuda:N or mps")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into --out even if it holds files attnlab did not write (they are kept)",
    )
    p.set_defaults(func=cmd_induction)


def _config(args: argparse.Namespace, seed: int, layers: int) -> Any:
    from attnlab.interp.induction import InductionConfig

    overrides: dict[str, Any] = {"seed": seed, "num_layers": layers, "device": args.device}
    if args.steps is not None:
        overrides["steps"] = args.steps
    return InductionConfig.quick(**overrides) if args.quick else InductionConfig(**overrides)


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def cmd_induction(args: argparse.Namespace) -> int:
    from attnlab.interp.induction import run_induction_lab
    from attnlab.runs import open_run, write_tidy_csv

    out = Path(args.out)
    runs = [(f"seed-{s}", s, args.layers) for s in args.seeds]
    if args.control:
        runs += [(f"control-seed-{s}", s, 1) for s in args.seeds]
    rows = []
    with open_run(out, command="interp induction", force=args.force):
        for name, seed, layers in runs:
            result = run_induction_lab(_config(args, seed, layers), out / name, figures=not args.no_figures)
            base = result.ablation("none") or {}
            ind = result.ablation("induction_head") or {}
            prev = result.ablation("previous_token_head") or {}
            rows.append(
                {
                    "run": name,
                    "seed": seed,
                    "layers": layers,
                    "phase_change_step": result.phase_change_step,
                    "phase_change_seconds": result.phase_change_seconds,
                    "induction_head": "L{}H{}".format(*result.induction_head) if result.induction_head else None,
                    "previous_token_head": "L{}H{}".format(*result.previous_token_head)
                    if result.previous_token_head
                    else None,
                    "first_half_loss": base.get("first_half_loss"),
                    "repeated_half_loss": base.get("repeated_half_loss"),
                    "repeated_loss_induction_ablated": ind.get("repeated_half_loss"),
                    "repeated_loss_previous_ablated": prev.get("repeated_half_loss"),
                    "skipped": result.skipped,
                }
            )
        summary = write_tidy_csv(out / "summary.csv", rows, "induction lab: one row per run")
    print(
        "| run | phase change (step) | seconds | induction head | first / repeated loss | ablate induction | ablate prev-token |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['run']}{' (done before)' if r['skipped'] else ''} | {_fmt(r['phase_change_step'], 'd')} | "
            f"{_fmt(r['phase_change_seconds'], '.1f')} | {r['induction_head'] or '-'} | "
            f"{_fmt(r['first_half_loss'])} / {_fmt(r['repeated_half_loss'])} | "
            f"{_fmt(r['repeated_loss_induction_ablated'])} | {_fmt(r['repeated_loss_previous_ablated'])} |"
        )
    print(f"wrote {summary} and one folder per run in {out}")
    return 0
