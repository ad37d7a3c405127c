"""Benchmark: why attention was invented. Exact match vs source length, RNN encoder-decoders beside the transformer.

The classic result of Bahdanau, Cho and Bengio (2015, fig. 2) and Luong et al. (2015): an
encoder-decoder that squeezes the source into one fixed-size vector degrades as sources grow,
while one that attends to every source position holds. Each model is trained exactly as
`attnlab train --task reverse --model M` trains it (`attnlab.train.seq2seq.train_task` with
the task's recipe for that model), on sources of 1 to --train-max (default 30) letters; then
fresh random sources of each length in --lengths (default 5, 10, ..., 60: beyond the
training lengths from 35 on) are decoded greedily and scored by exact match.

  rnn            GRU encoder-decoder, no attention (Sutskever et al. 2014; Cho et al. 2014)
  rnn-bahdanau   the same with additive attention (Bahdanau et al. 2015)
  rnn-luong      the same with general multiplicative attention and input feeding (Luong et al. 2015)
  rnn-luong-dot  the same with dot-product attention (`--model rnn-luong --model.attention=dot`)
  transformer    `Seq2SeqConfig` "small", its position tables widened to the longest test source
                 (its learned positions beyond the training lengths are never trained)

Also reported: parameters and training ms/step (the same batches and optimiser for all), and,
with --figures DIR, one alignment heatmap per attention model (decoder step x source position,
drawn as `attnlab viz alignment` draws it; the transformer's: last decoder layer, mean over heads).
The random test sources are drawn with --seed; lengths up to --train-max may repeat a training
source by chance (26**5 sources of length 5: rarely).

Usage:
    python benchmarks/bench_rnn_seq2seq.py [--models rnn rnn-bahdanau rnn-luong rnn-luong-dot transformer]
        [--max-iters N] [--train-max 30] [--lengths 5 10 ... 60] [--per-length 100] [--threads 2] [--out DIR] [--figures DIR]
It prints a markdown table (paste it into benchmarks/RESULTS.md). The lead runs it on an idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import random
import sys
import tempfile
from pathlib import Path

MODELS = ("rnn", "rnn-bahdanau", "rnn-luong", "rnn-luong-dot", "transformer")
# the benchmark's names that are not a `--model` of `attnlab train`: (--model, its model.attention)
VARIANTS = {"rnn-luong-dot": ("rnn-luong", "dot")}
LENGTHS = tuple(range(5, 61, 5))


def train_one(kind: str, out: Path, *, train_max: int, longest: int, max_iters: int | None, seed: int) -> dict:
    """Train `kind` on reverse with sources of 1..train_max letters; returns the results and the run folder."""
    from attnlab.data.seq2seq_tasks import TaskConfig
    from attnlab.train.seq2seq import recipe, train_task

    base, attention = VARIANTS.get(kind, (kind, None))
    r = recipe("reverse", base)
    task = TaskConfig(name="reverse", min_length=1, max_length=train_max, num_eval_examples=200)
    model = r.model if attention is None else dataclasses.replace(r.model, attention=attention)
    if kind == "transformer":  # room for the longest test source (+ <eos>) and output (<bos> + target)
        model = dataclasses.replace(model, max_source_len=longest + 1, max_target_len=longest + 1)
    else:
        model = dataclasses.replace(model, max_target_len=longest + 1)
    train = dataclasses.replace(r.train, progress=False, seed=seed)
    if max_iters is not None:
        train = dataclasses.replace(train, max_iters=max_iters)
    results = train_task(out / kind, task=task, model=model, train=train, beam_width=1)
    results["ms_per_step"] = 1000 * results["train_seconds"] / max(results["step"], 1)
    return results


def exact_match_by_length(folder: Path, lengths: list[int], per_length: int, seed: int) -> dict[int, float]:
    """Greedy exact match on `per_length` fresh random sources of each length."""
    from attnlab.models.registry import load_model
    from attnlab.train.seq2seq import evaluate_exact_match

    model, tok = load_model(folder)
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    scores = {}
    for n in lengths:
        sources = ["".join(rng.choice(letters) for _ in range(n)) for _ in range(per_length)]
        scores[n] = evaluate_exact_match(model, tok, [(s, s[::-1]) for s in sources])["exact_match"]
    return scores


def alignment_figure(folder: Path, kind: str, path: Path, length: int = 20, seed: int = 0) -> None:
    """Heatmap of the attention weights (decoder step x source position) for one random source.

    The library's `attnlab viz alignment`: `attnlab.train.seq2seq.alignment` decodes greedily and
    reads the cross-attention; the transformer's map is its last decoder layer averaged over heads.
    """
    from attnlab.models.registry import load_model
    from attnlab.train.seq2seq import alignment
    from attnlab.viz.attention import plot_alignment

    model, tok = load_model(folder)
    rng = random.Random(seed)
    source = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(length))
    found = alignment(model, tok, source, max_new_tokens=length + 1)
    weights = found.weights[-1].mean(axis=0)  # (T, S): the last decoder layer, mean over heads (RNN: its one map)
    what = f"{found.attention} attention" if found.weights.shape[:2] == (1, 1) else "last layer, mean over heads"
    plot_alignment(
        weights,
        found.source_tokens,
        found.output_tokens,
        path,
        title=f"{kind} ({what}): reversing {length} letters",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="models to train")
    parser.add_argument("--max-iters", type=int, default=None, help="optimizer steps (default: the recipe's)")
    parser.add_argument("--train-max", type=int, default=30, help="longest training source")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS), help="test source lengths")
    parser.add_argument("--per-length", type=int, default=100, help="test sources per length")
    parser.add_argument("--seed", type=int, default=0, help="training seed and test-source seed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="folder for the runs (default: a temporary folder)")
    parser.add_argument("--figures", default=None, help="write alignment heatmaps (PNG) into this folder")
    args = parser.parse_args(argv)

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="attnlab-rnn-seq2seq-"))
    longest = max(max(args.lengths), args.train_max)
    rows = []
    for kind in args.models:
        print(f"training {kind} ...", file=sys.stderr, flush=True)
        results = train_one(
            kind, out, train_max=args.train_max, longest=longest, max_iters=args.max_iters, seed=args.seed
        )
        by_length = exact_match_by_length(out / kind, args.lengths, args.per_length, args.seed + 1)
        rows.append((kind, results, by_length))
        if args.figures and kind != "rnn":  # every model with attention
            Path(args.figures).mkdir(parents=True, exist_ok=True)
            alignment_figure(out / kind, kind, Path(args.figures) / f"alignment_{kind}.png")

    print(f"reverse, trained on 1-{args.train_max} letters; greedy exact match (%) by source length")
    print(
        f"({args.per_length} random sources each); {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print("| model | parameters | steps | ms/step | " + " | ".join(str(n) for n in args.lengths) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in args.lengths) + " |")
    for kind, results, by_length in rows:
        from attnlab.models.registry import load_model

        params = sum(p.numel() for p in load_model(out / kind)[0].parameters())
        cells = " | ".join(f"{100 * by_length[n]:.0f}" for n in args.lengths)
        print(f"| {kind} | {params:,} | {results['step']} | {results['ms_per_step']:.1f} | {cells} |")
    print(f"\nruns: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
