"""`attnlab convert | embed`: Hugging Face interop and sentence embeddings from the command line.

attnlab convert --from-hf DIR --out DIR        GPT-2, BERT-family or ESM folder -> attnlab checkpoint
attnlab convert --to-hf CHECKPOINT --out DIR   attnlab GPT -> Hugging Face GPT-2 folder
attnlab embed --checkpoint DIR --text T [--text T ...] [--pool mean|cls] [--normalize] [--truncate]
"""

from __future__ import annotations

import argparse
import json
import sys

from attnlab import limits
from attnlab.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert Hugging Face models to attnlab checkpoints and GPTs to GPT-2 folders",
        description="--from-hf: read a Hugging Face model folder (GPT-2, BERT/MiniLM/RoBERTa or ESM; "
        "or a hub name when online) and write an attnlab checkpoint with its tokenizer. "
        "--to-hf: write an attnlab GPT checkpoint as a Hugging Face GPT-2 folder that "
        "transformers loads and generates from.",
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--from-hf", metavar="DIR", help="Hugging Face model folder (or hub name) to import")
    group.add_argument("--to-hf", metavar="CHECKPOINT", help="attnlab GPT checkpoint to export as GPT-2")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a model already in --out, and write into a folder that holds files attnlab did not write (they are kept)",
    )
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "embed",
        help="sentence (or sequence) embeddings from an encoder, as JSON on stdout",
        description="Embed texts with an attnlab encoder checkpoint or a Hugging Face encoder folder "
        "(e.g. all-MiniLM-L6-v2): [CLS] text [SEP] -> encoder -> mean (or CLS) pooling -> "
        'optional L2 normalisation. Prints JSON: {"model", "pool", "normalize", "dim", '
        '"texts", "vectors"}.',
    )
    p.add_argument("--checkpoint", required=True, help="attnlab encoder checkpoint or Hugging Face model folder")
    p.add_argument("--text", action="append", required=True, help="a text to embed (repeat for several)")
    p.add_argument(
        "--pool", choices=["mean", "cls"], default="mean", help="mean over tokens [default] or the [CLS] state"
    )
    p.add_argument("--normalize", action="store_true", help="L2-normalise the vectors (cosine-ready)")
    p.add_argument(
        "--truncate", action="store_true", help="cut texts longer than the model's context instead of failing"
    )
    p.add_argument(
        "--batch-size",
        type=limits.int_arg(1, limits.MAX_EVAL_BATCH_SIZE),
        default=32,
        help=f"texts per forward pass, 1 to {limits.MAX_EVAL_BATCH_SIZE:,} (default 32)",
    )
    p.set_defaults(func=cmd_embed)


def cmd_convert(args: argparse.Namespace) -> int:
    from attnlab.interop.pretrained import convert_from_hf, convert_to_hf

    if args.from_hf is not None:
        imported = convert_from_hf(args.from_hf, args.out, overwrite=args.force, force=args.force)
        model = imported.model
        n = sum(p.numel() for p in model.parameters())
        tok = type(imported.tokenizer).__name__ if imported.tokenizer is not None else "no tokenizer"
        print(
            f"converted {imported.architecture or imported.hf_model_type} ({n:,} parameters, {tok}) "
            f"-> attnlab {model.model_type} checkpoint {args.out}"
        )
        return 0
    from attnlab import checkpoint as ckpt
    from attnlab.interop.pretrained import EXPORTERS

    out = convert_to_hf(args.to_hf, args.out, overwrite=args.force, force=args.force)
    hf_class = EXPORTERS[ckpt.read_metadata(args.to_hf)["model_type"]][1]
    print(f"exported {args.to_hf} -> Hugging Face folder {out} (load with {hf_class}.from_pretrained)")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from attnlab.errors import CheckpointError
    from attnlab.interop.embed import embed_texts
    from attnlab.interop.pretrained import from_pretrained

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    model, tokenizer = from_pretrained(args.checkpoint)
    if getattr(model, "model_type", None) != "encoder":
        raise CheckpointError(
            f"{args.checkpoint!r} holds a {getattr(model, 'model_type', 'different')} model; `embed` needs an encoder "
            "(a BERT-family or ESM folder, or an `attnlab train --objective mlm` checkpoint)"
        )
    if tokenizer is None:
        raise CheckpointError(f"{args.checkpoint!r} has no tokenizer, so it cannot turn text into tokens")
    vectors = embed_texts(
        model,
        tokenizer,
        args.text,
        pool=args.pool,
        normalize=args.normalize,
        truncate=args.truncate,
        batch_size=args.batch_size,
    )
    result = {
        "model": str(args.checkpoint),
        "pool": args.pool,
        "normalize": bool(args.normalize),
        "dim": int(vectors.shape[1]),
        "texts": list(args.text),
        # 9 significant digits: exactly the float32 values, without float64 noise digits
        "vectors": [[float(f"{v:.9g}") for v in row] for row in vectors.tolist()],
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0
