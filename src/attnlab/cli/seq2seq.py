"""`attnlab translate`: decode text with a trained seq2seq checkpoint (greedy or beam search).

Training is `attnlab train --task reverse|sort|numbers --out DIR` (see `attnlab.cli.lm`,
which hands `--task` runs to `attnlab.train.seq2seq.run_training`).
"""

from __future__ import annotations

import argparse
import json
import sys

from attnlab import limits
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
    p.add_argument("--beam", type=limits.int_arg(1, limits.MAX_BEAM), default=1,
                   help=f"beam width, 1 to {limits.MAX_BEAM} (1 = greedy decoding [default])")
    p.add_argument("--length-penalty", type=limits.float_arg(-limits.MAX_LENGTH_PENALTY, limits.MAX_LENGTH_PENALTY),
                   default=1.0, help="beam search ranks by log-prob / length**alpha, alpha from "
                   f"-{limits.MAX_LENGTH_PENALTY:g} to {limits.MAX_LENGTH_PENALTY:g} (default 1.0; 0 = plain log-prob)")
    p.add_argument("--max-new-tokens", type=limits.int_arg(1, limits.MAX_NEW_TOKENS), default=None,
                   help=f"longest output, 1 to {limits.MAX_NEW_TOKENS:,} (default: the model's limit)")
    p.add_argument("--all-beams", action="store_true", help="print every beam hypothesis with its log-probability")
    p.add_argument("--no-kv-cache", action="store_true", help="recompute the whole output prefix every step")
    p.add_argument("--json", action="store_true", help="print a JSON list (source, output, log_prob, finished)")
    p.set_defaults(func=cmd_translate)


def cmd_translate(args: argparse.Namespace) -> int:
    import torch

    from attnlab.models.registry import load_model
    from attnlab.train.seq2seq import encode_source, output_text, translate

    if args.beam < 1:
        raise ConfigError(f"--beam must be at least 1, got {args.beam}")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    model, tokenizer = load_model(args.checkpoint, expect="seq2seq")
    if tokenizer is None:
        raise CheckpointError(f"{args.checkpoint!r} has no tokenizer, so it cannot turn text into tokens")
    results = translate(
        model, tokenizer, args.text, beam_width=args.beam, length_penalty=args.length_penalty,
        max_new_tokens=args.max_new_tokens, use_cache=not args.no_kv_cache,
    )
    if args.json:
        print(json.dumps([{"source": t.source, "output": t.text, "log_prob": t.log_prob, "finished": t.finished}
                          for t in results], indent=2))
        return 0
    if not args.all_beams or args.beam == 1:
        for t in results:
            print(t.text)
            if not t.finished:
                print(f"attnlab: warning: the output for {t.source!r} hit the length limit before <eos>", file=sys.stderr)
        return 0
    c = model.config
    for text in args.text:
        ids = torch.tensor([encode_source(tokenizer, text, c.eos_id)])
        gen = model.generate(ids, beam_width=args.beam, length_penalty=args.length_penalty,
                             max_new_tokens=args.max_new_tokens, use_cache=not args.no_kv_cache)
        print(f"{text}:")
        for k in range(args.beam):
            score = float(gen.beam_scores[0, k])
            if score == float("-inf"):
                continue  # fewer distinct hypotheses than beams (tiny vocabularies)
            print(f"  {k + 1}. {output_text(tokenizer, gen.beams[0, k].tolist(), c.eos_id)}   log-prob {score:.4f}")
    return 0
