"""`attnlab interp ...`: causal experiments on a trained language model, written to --out DIR.

    attnlab interp cache     --checkpoint DIR --text T [--names PATTERN ...] [--format npz|pt] --out DIR
    attnlab interp patch     --checkpoint DIR --clean T --corrupted T --answer TOK --wrong TOK --out DIR
    attnlab interp ablate    --checkpoint DIR --text T [--heads L.H,...] [--kind mean|zero|resample] --out DIR
    attnlab interp attribute --checkpoint DIR --text T [--token TOK] [--wrong TOK] --out DIR
    attnlab interp heads     --checkpoint DIR (--text T | --random [--half-len N] [--batch B]) --out DIR

Every command writes tidy CSVs (a first line `# attnlab-output ...`; read them with
`pandas.read_csv(path, comment="#")`) and figures into --out, and refuses to replace a
file there that attnlab did not write (unless --force). The checkpoint is a GPT or
LLaMA-style causal LM with a tokenizer (`attnlab train`). Registering the commands
imports nothing heavy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab import limits
from attnlab.errors import CheckpointError, ConfigError, DataError
from attnlab.limits import SEED_HELP, int_arg, seed_arg
from attnlab.runs import write_tidy_csv

KINDS = ("mean", "zero", "resample")  # = attnlab.interp.ABLATIONS, mean first (the default)
PATCH_KINDS = ("residual", "attn_out", "mlp_out", "heads")  # = attnlab.interp.patching.PATCHERS
DPI_HELP = f"PNG resolution in dots per inch, {limits.MIN_DPI} to {limits.MAX_DPI:,} (default 150)"


def register(subparsers) -> None:
    """Add the `interp` command group to the top-level parser."""
    parser = subparsers.add_parser(
        "interp",
        help="look inside a language model: activation cache, patching, ablation, logit attribution, head scores",
        description=(
            "Causal experiments on a trained GPT / LLaMA-style checkpoint; each writes tidy CSVs and figures "
            "into --out DIR."
        ),
    )
    actions = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=type(parser))
    parser.set_defaults(func=_no_experiment)
    _register_cache(actions)
    _register_patch(actions)
    _register_ablate(actions)
    _register_attribute(actions)
    _register_heads(actions)
    try:  # the induction-head lab lives in its own module (attnlab.cli.interp_induction)
        from attnlab.cli.interp_induction import register as register_induction
    except ImportError:  # pragma: no cover - until that module exists
        register_induction = None
    if register_induction is not None:
        register_induction(actions)


def _no_experiment(args: argparse.Namespace) -> int:
    raise ConfigError(
        "choose an experiment: cache, patch, ablate, attribute, heads or induction (see attnlab interp --help)"
    )


def _add_common(p: argparse.ArgumentParser, *, text: bool = True) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="a GPT or LLaMA-style checkpoint folder")
    if text:
        p.add_argument("--text", required=True, help="the text to run the model on")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the CSVs and figures (created if missing)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace files in --out even if attnlab did not write them (yours are kept as NAME.orig)",
    )
    p.add_argument("--dpi", type=int_arg(limits.MIN_DPI, limits.MAX_DPI), default=150, help=DPI_HELP)


# ---------------------------------------------------------------------------
# Shared steps: output files, loading, tokenizing
# ---------------------------------------------------------------------------


def _outputs(args: argparse.Namespace, names: list[str]) -> dict[str, Path]:
    """The files this command writes into --out, checked before any work is done."""
    from attnlab.runs import check_output_file

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder for the CSVs and figures")
    paths = {name: out / name for name in names}
    for path in paths.values():
        check_output_file(path, force=args.force, flag="--out")
    return paths


def _load(checkpoint: str):
    """(model, tokenizer) of a causal LM checkpoint with hook points, or a one-line error."""
    from attnlab.interp import hook_names
    from attnlab.models import registry
    from attnlab.models.registry import load_model

    if not Path(checkpoint).exists():
        raise CheckpointError(f"no checkpoint at {checkpoint!r}; pass a run folder written by `attnlab train`")
    causal = registry.model_types("causal_lm")
    model, tokenizer = load_model(checkpoint, expect=causal)
    if tokenizer is None:
        raise CheckpointError(f"{checkpoint!r} has no tokenizer, so it cannot turn text into tokens")
    hook_names(model)  # a model without hook points fails here (ConfigError)
    return model, tokenizer


def _encode(model, tokenizer, text: str, flag: str = "--text") -> list[int]:
    if not text:
        raise DataError(f"{flag} is empty; give some text")
    ids = list(tokenizer.encode(text))
    if not ids:
        raise DataError(f"{flag} {text!r} gives no tokens; give some text")
    limit = int(model.config.max_seq_len)
    if len(ids) > limit:
        raise DataError(f"{flag} is {len(ids)} tokens long but the model's context is {limit} tokens; shorten it")
    return ids


def _single_token(tokenizer, text: str, flag: str) -> int:
    if not text:
        raise DataError(f"{flag} is empty; give one token")
    ids = list(tokenizer.encode(text))
    if len(ids) != 1:
        from attnlab.viz.models import token_labels

        pieces = " | ".join(repr(t) for t in token_labels(tokenizer, ids)[:8])
        raise DataError(f"{flag} {text!r} is {len(ids)} tokens with this tokenizer ({pieces}); give a single token")
    return int(ids[0])


def _labels(tokenizer, ids: list[int]) -> list[str]:
    from attnlab.viz.models import token_labels

    return token_labels(tokenizer, ids)


def _tensor(ids: list[int]):
    import torch

    return torch.tensor([ids], dtype=torch.long)


# ---------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------


def _register_cache(actions) -> None:
    p = actions.add_parser(
        "cache",
        help="list the hook points with their shapes on a text; save chosen activations (.npz or .pt)",
        description=(
            "Run the model on --text with every hook point attached, write hook_points.csv (name, shape) and, "
            "with --names, the chosen activations as activations.npz (or .pt with --format pt)."
        ),
    )
    _add_common(p)
    p.add_argument(
        "--names",
        nargs="+",
        metavar="PATTERN",
        default=None,
        help="hook point names or glob patterns to save, e.g. 'blocks.*.attn.hook_pattern' hook_embed",
    )
    p.add_argument("--format", choices=("npz", "pt"), default="npz", help="file format of the saved activations")
    p.set_defaults(func=_run_cache)


def _run_cache(args: argparse.Namespace) -> int:
    names = ["hook_points.csv"] + ([f"activations.{args.format}"] if args.names else [])
    paths = _outputs(args, names)
    from attnlab.interp import resolve_names, run_with_cache

    model, tokenizer = _load(args.checkpoint)
    chosen = resolve_names(model, args.names) if args.names else None
    ids = _encode(model, tokenizer, args.text)
    import torch

    with torch.no_grad():
        _, cache = run_with_cache(model, _tensor(ids))
    rows = [{"name": n, "shape": "x".join(str(s) for s in t.shape), "dtype": str(t.dtype)} for n, t in cache.items()]
    width = max(len(n) for n in cache)
    for row in rows:
        print(f"{row['name']:<{width}}  ({row['shape'].replace('x', ', ')})")
    print(write_tidy_csv(paths["hook_points.csv"], rows, "hook points of one forward: name, shape, dtype"))
    if chosen:
        path = paths[f"activations.{args.format}"]
        _save_activations(path, {n: cache[n] for n in chosen}, ids, args.format)
        print(f"{path} ({len(chosen)} activations)")
    return 0


def _save_activations(path: Path, tensors: dict, ids: list[int], fmt: str) -> None:
    import numpy as np
    import torch

    from attnlab import __version__
    from attnlab.runs import OUTPUT_MARK
    from attnlab.utils import atomic_path

    mark = f"{OUTPUT_MARK} (attnlab {__version__})"
    with atomic_path(path) as tmp:
        if fmt == "pt":
            with open(tmp, "wb") as f:  # a dict of tensors: torch.load(path, weights_only=True) reads it
                torch.save(
                    {"input_ids": torch.tensor(ids), **{n: t.cpu() for n, t in tensors.items()}, "_mark": mark}, f
                )
        else:
            with open(tmp, "wb") as f:  # uncompressed, so the mark's bytes are in the file
                np.savez(
                    f,
                    input_ids=np.asarray(ids),
                    _mark=np.array(mark),
                    **{n: t.cpu().numpy() for n, t in tensors.items()},
                )


# ---------------------------------------------------------------------------
# patch
# ---------------------------------------------------------------------------


def _register_patch(actions) -> None:
    p = actions.add_parser(
        "patch",
        help="activation patching: which layer, position and head carry the answer from a clean to a corrupted text",
        description=(
            "Run --clean and --corrupted (same token length), then rerun the corrupted text with one activation "
            "from the clean run, and measure the normalised logit difference --answer minus --wrong at the last "
            "position (1 = clean behaviour, 0 = corrupted). Writes patch_<kind>.csv and patch_<kind>.png."
        ),
    )
    _add_common(p, text=False)
    p.add_argument("--clean", required=True, help="the clean text (the model should answer --answer)")
    p.add_argument("--corrupted", required=True, help="the corrupted text, with the same number of tokens")
    p.add_argument("--answer", required=True, metavar="TOK", help="the clean answer: one token")
    p.add_argument("--wrong", required=True, metavar="TOK", help="the corrupted answer: one token")
    p.add_argument(
        "--what",
        default="residual,attn_out,mlp_out,heads",
        help="comma-separated experiments: residual (layer x position), attn_out, mlp_out (per layer), heads "
        "(layer x head); default all (mlp_out is skipped for attention-only models)",
    )
    p.set_defaults(func=_run_patch)


def _patch_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in PATCH_KINDS]
    if bad or not kinds:
        raise ConfigError(f"--what {text!r}: choose from {', '.join(PATCH_KINDS)} (comma-separated)")
    return list(dict.fromkeys(kinds))


def _run_patch(args: argparse.Namespace) -> int:
    kinds = _patch_kinds(args.what)
    paths = _outputs(args, [f"patch_{k}.{ext}" for k in kinds for ext in ("csv", "png")])
    from attnlab.interp.figures import plot_patching
    from attnlab.interp.patching import PATCHERS

    model, tokenizer = _load(args.checkpoint)
    clean = _encode(model, tokenizer, args.clean, "--clean")
    corrupted = _encode(model, tokenizer, args.corrupted, "--corrupted")
    if len(clean) != len(corrupted):
        raise DataError(
            f"--clean is {len(clean)} tokens and --corrupted is {len(corrupted)}; patching needs the same token "
            "length: reword one of them"
        )
    answer = _single_token(tokenizer, args.answer, "--answer")
    wrong = _single_token(tokenizer, args.wrong, "--wrong")
    if answer == wrong:
        raise ConfigError("--answer and --wrong are the same token; the logit difference would always be 0")
    if "mlp_out" in kinds and all(getattr(b, "ff", None) is None for b in model.blocks):
        print("note: the model is attention-only; skipping mlp_out")
        kinds.remove("mlp_out")
    from attnlab.viz._mpl import token_label

    labels = [f"{i}:{token_label(t)}" for i, t in enumerate(_labels(tokenizer, clean))]
    first = True
    for kind in kinds:
        kwargs = {"labels": labels} if kind != "heads" else {}
        result = PATCHERS[kind](model, _tensor(clean), _tensor(corrupted), answer, wrong, **kwargs)
        if first:
            print(
                f"logit difference {args.answer!r} - {args.wrong!r}: clean {result.clean_logit_diff:.3f}, "
                f"corrupted {result.corrupted_logit_diff:.3f}"
            )
            first = False
        i, j, best = result.best()
        print(f"{kind}: strongest patch {result.row_labels[i]} {result.col_labels[j]} -> {best:.3f}")
        print(write_tidy_csv(paths[f"patch_{kind}.csv"], result.to_rows(), f"activation patching ({kind})"))
        print(plot_patching(result, paths[f"patch_{kind}.png"], dpi=args.dpi))
    return 0


# ---------------------------------------------------------------------------
# ablate
# ---------------------------------------------------------------------------


def _register_ablate(actions) -> None:
    p = actions.add_parser(
        "ablate",
        help="ablate each head: the loss change per head (figure + CSV), and a continuation with heads off vs on",
        description=(
            "Ablate each head alone on --text and write the change of the mean next-token loss (loss_change.csv, "
            "loss_change.png); then generate a greedy continuation of --text with the heads of --heads off and "
            "with every head on (generation.csv). Without --heads, the head whose ablation hurts most is used."
        ),
    )
    _add_common(p)
    p.add_argument("--heads", default=None, metavar="L.H,...", help="heads to switch off, e.g. 1.0,0.1")
    p.add_argument("--kind", choices=KINDS, default="mean", help="how a head is removed (default mean over the text)")
    p.add_argument(
        "--max-new-tokens",
        type=int_arg(0, limits.MAX_NEW_TOKENS),
        default=40,
        help="tokens to generate (at most what the context leaves; default 40)",
    )
    p.add_argument("--seed", type=seed_arg, default=0, help=f"seed of resample ablation ({SEED_HELP})")
    p.set_defaults(func=_run_ablate)


def _parse_heads(text: str, L: int, H: int) -> list[tuple[int, int]]:
    heads = []
    for part in text.split(","):
        part = part.strip()
        pieces = part.split(".")
        if len(pieces) != 2 or not all(x.strip().isdigit() for x in pieces):
            raise ConfigError(f"--heads {text!r}: write heads as LAYER.HEAD, comma-separated, e.g. 1.0,0.1")
        layer, head = int(pieces[0]), int(pieces[1])
        if not (0 <= layer < L and 0 <= head < H):
            raise ConfigError(f"--heads: head {layer}.{head} does not exist; this model has {L} layers x {H} heads")
        heads.append((layer, head))
    return list(dict.fromkeys(heads))


def _run_ablate(args: argparse.Namespace) -> int:
    paths = _outputs(args, ["loss_change.csv", "loss_change.png", "generation.csv"])
    import numpy as np
    import torch

    from attnlab.configs.sampling import SamplingConfig
    from attnlab.decoding.causal import generate_text
    from attnlab.interp import head_ablation_hooks, hooks, model_heads
    from attnlab.interp.attribution import loss_change_per_head
    from attnlab.interp.figures import plot_head_matrix

    model, tokenizer = _load(args.checkpoint)
    L, H = model_heads(model)
    chosen = _parse_heads(args.heads, L, H) if args.heads else None
    ids = _encode(model, tokenizer, args.text)
    if len(ids) < 2:
        raise DataError("--text needs at least 2 tokens to measure the next-token loss")
    if args.kind == "resample":
        raise ConfigError(
            "--kind resample needs other inputs to take a head's values from; with one --text use mean or zero"
        )
    change = loss_change_per_head(model, _tensor(ids), args.kind, seed=args.seed)
    print(f"loss on the text: {change.base_loss:.4f}; change when each head is ablated ({args.kind}):")
    for layer in range(L):
        print(f"  L{layer}: " + "  ".join(f"H{h} {change.values[layer, h]:+.4f}" for h in range(H)))
    print(write_tidy_csv(paths["loss_change.csv"], change.to_rows(), f"loss change per ablated head ({args.kind})"))
    print(
        plot_head_matrix(
            change.values,
            paths["loss_change.png"],
            title=f"loss change per ablated head ({args.kind})",
            label="loss change (nats)",
            dpi=args.dpi,
        )
    )
    if chosen is None:
        flat = int(np.nanargmax(change.values))
        chosen = [divmod(flat, H)]
        print(f"no --heads given: switching off L{chosen[0][0]}H{chosen[0][1]}, the head whose ablation hurts most")
    new = min(args.max_new_tokens, int(model.config.max_seq_len) - len(ids))
    sampling = SamplingConfig(max_new_tokens=max(new, 0), temperature=0.0)
    with torch.no_grad():
        on = generate_text(model, tokenizer, args.text, sampling)
        fwd = head_ablation_hooks(model, chosen, kind=args.kind, reference=_tensor(ids))
        with hooks(model, fwd):
            off = generate_text(model, tokenizer, args.text, sampling)
    names = ",".join(f"{layer}.{head}" for layer, head in chosen)
    print(f"every head on:   {on!r}")
    print(f"heads {names} off: {off!r}")
    rows = [
        {"condition": "all heads on", "heads_off": "", "kind": args.kind, "text": on},
        {"condition": "heads off", "heads_off": names, "kind": args.kind, "text": off},
    ]
    print(write_tidy_csv(paths["generation.csv"], rows, "greedy continuations with heads on and off"))
    return 0


# ---------------------------------------------------------------------------
# attribute
# ---------------------------------------------------------------------------


def _register_attribute(actions) -> None:
    p = actions.add_parser(
        "attribute",
        help="direct logit attribution: each head's and MLP's contribution to the logit of a token",
        description=(
            "Split the logit of --token (default the model's prediction) at the last position of --text into the "
            "direct contributions of the embeddings, each head, each MLP and the biases, through the final norm "
            "with its scale frozen; they sum to the logit. Writes attribution.csv and attribution.png."
        ),
    )
    _add_common(p)
    p.add_argument("--token", default=None, metavar="TOK", help="the token whose logit is split (one token)")
    p.add_argument("--wrong", default=None, metavar="TOK", help="split the logit difference --token minus this token")
    p.set_defaults(func=_run_attribute)


def _run_attribute(args: argparse.Namespace) -> int:
    paths = _outputs(args, ["attribution.csv", "attribution.png"])
    from attnlab.interp.attribution import direct_logit_attribution
    from attnlab.interp.figures import plot_logit_attribution

    model, tokenizer = _load(args.checkpoint)
    ids = _encode(model, tokenizer, args.text)
    token = _single_token(tokenizer, args.token, "--token") if args.token is not None else None
    wrong = _single_token(tokenizer, args.wrong, "--wrong") if args.wrong is not None else None
    result = direct_logit_attribution(model, _tensor(ids), token, wrong=wrong)
    text = tokenizer.decode([result.token])
    what = f"logit of {text!r}" + (f" minus {tokenizer.decode([wrong])!r}" if wrong is not None else "")
    print(f"{what} at the last position: {result.logit:.4f} (sum of contributions {result.total:.4f})")
    order = sorted(range(len(result.values)), key=lambda k: -abs(result.values[k]))[:5]
    for k in order:
        print(f"  {result.labels[k]:<16} {result.values[k]:+.4f}")
    rows = [{**row, "token_text": text} for row in result.to_rows()]
    print(write_tidy_csv(paths["attribution.csv"], rows, f"direct logit attribution ({what})"))
    print(plot_logit_attribution(result, paths["attribution.png"], token_text=text, dpi=args.dpi))
    return 0


# ---------------------------------------------------------------------------
# heads
# ---------------------------------------------------------------------------


def _register_heads(actions) -> None:
    p = actions.add_parser(
        "heads",
        help="attention-pattern scores per head: previous-token, first-token, duplicate, induction, entropy",
        description=(
            "Score every head's attention pattern on --text, or with --random on random token sequences repeated "
            "twice (the induction probe; the induction score is only meaningful there). Writes head_scores.csv "
            "and head_scores.png."
        ),
    )
    _add_common(p, text=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the text to score the heads on")
    src.add_argument("--random", action="store_true", help="random tokens repeated twice (the induction probe)")
    p.add_argument(
        "--half-len",
        type=int_arg(1, limits.MAX_INDEX),
        default=None,
        help="with --random: tokens in each half (default: half the context, at most 32)",
    )
    p.add_argument("--batch", type=int_arg(1, limits.MAX_EVAL_BATCH_SIZE), default=8, help="with --random: sequences")
    p.add_argument("--seed", type=seed_arg, default=0, help=f"with --random: seed of the tokens ({SEED_HELP})")
    p.set_defaults(func=_run_heads)


def _run_heads(args: argparse.Namespace) -> int:
    paths = _outputs(args, ["head_scores.csv", "head_scores.png"])
    from attnlab.interp.figures import plot_head_scores
    from attnlab.interp.heads import head_scores, repeated_random_tokens

    model, tokenizer = _load(args.checkpoint)
    context = int(model.config.max_seq_len)
    if args.random:
        half = args.half_len if args.half_len is not None else min(32, context // 2)
        if 2 * half > context:
            raise ConfigError(f"--half-len {half}: two halves ({2 * half} tokens) exceed the context of {context}")
        ids = repeated_random_tokens(int(model.config.vocab_size), half, args.batch, args.seed)
        source = f"{args.batch} random sequences of {half} tokens, each repeated"
    else:
        if args.half_len is not None:
            raise ConfigError("--half-len applies to --random only")
        ids = _tensor(_encode(model, tokenizer, args.text))
        source = "the text"
    scores = head_scores(model, ids)
    print(f"head scores on {source}:")
    header = f"{'head':<7}" + "".join(f"{n.replace('_token', ''):>12}" for n in scores.as_dict())
    print(header)
    for row in scores.to_rows():
        values = [row[n] for n in scores.as_dict()]
        print(f"L{row['layer']}H{row['head']:<4}" + "".join(f"{v:>12.3f}" for v in values))
    if not args.random:
        print("note: the induction score assumes the text is a sequence repeated twice; use --random for the probe")
    rows = [{**row, "source": "random" if args.random else "text"} for row in scores.to_rows()]
    print(write_tidy_csv(paths["head_scores.csv"], rows, f"attention-pattern scores per head on {source}"))
    print(plot_head_scores(scores, paths["head_scores.png"], dpi=args.dpi, title=f"head scores on {source}"))
    return 0
