"""`attnlab translate`: decode text with a trained seq2seq checkpoint (greedy or beam search).

Training is `attnlab train --task reverse|sort|numbers --out DIR`: `attnlab.cli.lm` hands
`--task` runs to `run_training` below, which calls `attnlab.train.seq2seq.train_task`.
`--model rnn|rnn-bahdanau|rnn-luong|transformer` chooses the encoder-decoder (default transformer).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from attnlab import limits
from attnlab.cli.train_common import check_resume_agrees, collect_configs, resumed_train, run_recipe, saved_run
from attnlab.errors import CheckpointError, ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help="decode text with a seq2seq checkpoint (greedy or beam search)",
        description="Decode each --text with a seq2seq model trained by `attnlab train --task NAME`. "
        "Prints one output per line (with --beam N, the best of N hypotheses; --all-beams prints "
        "every hypothesis with its log-probability).",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (a run folder of `attnlab train --task`)")
    p.add_argument("--text", action="append", required=True, help="input text; repeat for several inputs")
    p.add_argument(
        "--beam",
        type=limits.int_arg(1, limits.MAX_BEAM),
        default=1,
        help=f"beam width, 1 to {limits.MAX_BEAM} (1 = greedy decoding [default])",
    )
    p.add_argument(
        "--length-penalty",
        type=limits.float_arg(-limits.MAX_LENGTH_PENALTY, limits.MAX_LENGTH_PENALTY),
        default=1.0,
        help="beam search ranks by log-prob / length**alpha, alpha from "
        f"-{limits.MAX_LENGTH_PENALTY:g} to {limits.MAX_LENGTH_PENALTY:g} (default 1.0; 0 = plain log-prob)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=limits.int_arg(1, limits.MAX_NEW_TOKENS),
        default=None,
        help=f"longest output, 1 to {limits.MAX_NEW_TOKENS:,} (default: the model's limit)",
    )
    p.add_argument("--all-beams", action="store_true", help="print every beam hypothesis with its log-probability")
    p.add_argument("--no-kv-cache", action="store_true", help="recompute the whole output prefix every step")
    p.add_argument("--json", action="store_true", help="print a JSON list (source, output, log_prob, finished)")
    p.set_defaults(func=cmd_translate)


def cmd_translate(args: argparse.Namespace) -> int:
    import torch

    from attnlab.models import registry
    from attnlab.models.registry import load_model
    from attnlab.train.seq2seq import encode_source, output_text, translate

    if args.beam < 1:
        raise ConfigError(f"--beam must be at least 1, got {args.beam}")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    model, tokenizer = load_model(args.checkpoint, expect=registry.model_types("encoder_decoder"))
    if tokenizer is None:
        raise CheckpointError(f"{args.checkpoint!r} has no tokenizer, so it cannot turn text into tokens")
    results = translate(
        model,
        tokenizer,
        args.text,
        beam_width=args.beam,
        length_penalty=args.length_penalty,
        max_new_tokens=args.max_new_tokens,
        use_cache=not args.no_kv_cache,
    )
    if args.json:
        print(
            json.dumps(
                [
                    {"source": t.source, "output": t.text, "log_prob": t.log_prob, "finished": t.finished}
                    for t in results
                ],
                indent=2,
            )
        )
        return 0
    if not args.all_beams or args.beam == 1:
        for t in results:
            print(t.text)
            if not t.finished:
                print(
                    f"attnlab: warning: the output for {t.source!r} hit the length limit before <eos>", file=sys.stderr
                )
        return 0
    c = model.config
    for text in args.text:
        ids = torch.tensor([encode_source(tokenizer, text, c.eos_id)])
        gen = model.generate(
            ids,
            beam_width=args.beam,
            length_penalty=args.length_penalty,
            max_new_tokens=args.max_new_tokens,
            use_cache=not args.no_kv_cache,
        )
        print(f"{text}:")
        for k in range(args.beam):
            score = float(gen.beam_scores[0, k])
            if score == float("-inf"):
                continue  # fewer distinct hypotheses than beams (tiny vocabularies)
            print(f"  {k + 1}. {output_text(tokenizer, gen.beams[0, k].tolist(), c.eos_id)}   log-prob {score:.4f}")
    return 0


# ---------------------------------------------------------------------------
# `attnlab train --task NAME`
# ---------------------------------------------------------------------------

SECTIONS = {"model", "train", "task"}


def _task_settings(args: Any, extra_task: dict[str, Any], base: Any) -> Any:
    from attnlab import config as C

    file_task: dict[str, Any] = {}
    if args.config:
        file_task = C.load_file(args.config).get("task") or {}
    for where, values in (("the config file's task section", file_task), ("--task.* overrides", extra_task)):
        if "name" in values:
            raise ConfigError(f"{where} cannot set the task name; choose the task with --task")
    task = C.replace(base, file_task, section="task")
    return C.replace(task, extra_task, section="task")


def _saved_model_type(out: str) -> str | None:
    """The model type of the checkpoint in `out`, or None when it holds none."""
    from attnlab import checkpoint as ckpt

    try:
        return str(ckpt.read_metadata(out)["model_type"])
    except CheckpointError:
        return None


def _task_model(args: Any) -> str:
    """The --model of a --task run: the flag; when resuming without it, the checkpoint's own kind.

    Raises:
        ConfigError: an unknown --model, or one the resumed checkpoint was not trained as.
    """
    from attnlab.train.seq2seq import TASK_MODELS, task_model_type

    chosen = getattr(args, "model", None)
    if chosen is not None:
        task_model_type(chosen)  # known?
    saved_type = _saved_model_type(args.out) if args.resume else None
    saved_kinds = [kind for kind in TASK_MODELS if task_model_type(kind) == saved_type]
    if not saved_kinds:
        return chosen or "transformer"  # not a checkpoint of a task model: the recipe says so in its own words
    if chosen is not None and chosen not in saved_kinds:
        raise ConfigError(
            f"cannot resume {args.out!r} with --model {chosen}: it holds a {saved_type} model; drop --model "
            "(or pass the one it was trained with), or train a new run with another --out"
        )
    return chosen or saved_kinds[0]  # the attention itself comes from the checkpoint


def run_training(args: Any, extra: list[str]) -> int:
    """`attnlab train --task NAME ...` (called by `attnlab.cli.lm`). Returns the exit code."""
    from attnlab import config as C
    from attnlab.configs.rnn_seq2seq import TASK_MODEL_ATTENTION
    from attnlab.data.seq2seq_tasks import TaskConfig
    from attnlab.train.seq2seq import recipe, train_task

    if args.engine != "torch":
        raise ConfigError("--engine numpy trains GPT language models only; drop it for --task")
    if args.data is not None or args.tokenizer is not None:
        raise ConfigError(
            "--data and --tokenizer do not apply to --task: a task generates its own examples "
            "and character vocabulary (set task sizes with --task.FIELD=VALUE)"
        )
    kind = _task_model(args)
    r = recipe(args.task, kind)
    model, train, _, overrides = collect_configs(args, extra, type(r.model), r.model_preset, sections=SECTIONS)
    resume_overrides = overrides
    if kind in TASK_MODEL_ATTENTION:  # --model rnn-*: its attention, unless a file or --model.attention sets one
        file_model = (C.load_file(args.config).get("model") or {}) if args.config else {}
        if "attention" not in overrides.get("model", {}) and "attention" not in file_model:
            model = C.replace(model, {"attention": TASK_MODEL_ATTENTION[kind]}, section="model")
            if getattr(args, "model", None) is not None:  # resuming: the named attention must be the saved one
                resume_overrides = {**overrides, "model": {**overrides.get("model", {}), "attention": kind}}
    explicit = set(overrides.get("train", {}))
    if args.config:
        explicit |= set(C.load_file(args.config).get("train") or {})
    if args.max_iters is not None:
        explicit.add("max_iters")
    if args.seed is not None:
        explicit.add("seed")
    train = C.replace(train, {k: v for k, v in r.train_overrides.items() if k not in explicit}, section="train")
    task = _task_settings(args, overrides.get("task", {}), r.task)

    if args.resume:
        check_resume_agrees(args, resume_overrides, model)
        if overrides.get("task"):
            raise ConfigError("the task cannot change when resuming; drop the --task.* overrides")
        saved = saved_run(args.out)
        if saved is not None:
            saved_task = C.from_dict(TaskConfig, saved.get("task", {}), section="task")
            if saved_task.name != args.task:
                raise ConfigError(
                    f"{args.out!r} was trained on the {saved_task.name} task; resume it with --task {saved_task.name}"
                )
            task = saved_task
            train = resumed_train(args, train, explicit, saved)
    return run_recipe(
        lambda: train_task(
            args.out, task=task, model=model, train=train, resume=args.resume, force=getattr(args, "force", False)
        ),
        lambda results: print_results(results, args.out),
    )


def print_results(results: dict[str, Any], out: str) -> None:
    """The lines `attnlab train --task NAME` ends with."""
    from attnlab.train.seq2seq import PREDICTIONS_FILE

    line = f"done: {results['step']} steps in {results['train_seconds']:.1f} s"
    if results.get("val_loss") is not None:
        line += f"; held-out loss {results['val_loss']:.4f}"
    print(line)
    em = f"held-out exact match ({results['num_eval_examples']} examples): greedy {100 * results['exact_match']:.1f}%"
    if "exact_match_beam" in results:
        em += f", beam search (width {results['beam_width']}) {100 * results['exact_match_beam']:.1f}%"
    print(em)
    print(f"checkpoint, metrics and {PREDICTIONS_FILE}: {out}")
    print(f'next: attnlab translate --checkpoint {out} --text "..."')
