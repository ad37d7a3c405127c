"""Benchmark: memory of the text-corpus data path of `attnlab train` against the size of the corpus.

Goal (issue: "memory for a large text corpus stays within a small multiple of the file
size"): reading a corpus, building the character tokenizer, encoding it and serving
batches takes a peak resident set (RSS) of a small multiple of the text's size, so a
1 GB corpus trains on a 24 GB laptop.

For each size the script writes an English-like text file (the lines of CPython's
`pydoc_data.topics`, repeated and shuffled with a fixed seed) into a temporary folder,
then runs, each in a fresh Python process, what `attnlab train --data.source=FILE`
does before the first step: `load_text`, `build_tokenizer_for` (char), `encode_corpus`,
`LMData`, and a few training and evaluation batches. Each process reports its peak RSS
(`resource.getrusage(...).ru_maxrss`). A process that only imports attnlab, NumPy and
torch gives the baseline, subtracted to get the memory the data itself costs. Corpora
above the memory-map threshold (64 MB) are encoded into the token cache on the first
("cold") run and read back memory-mapped on the second ("warm") run. With `--before`, each
size also runs the code path of before the issue (HEAD's `read_text_file`, the char
tokenizer's `sorted(set(text))` and list-of-ints encoding, int64 ids), copied into this
script as `before_path`, for the comparison.

    python benchmarks/bench_corpus_memory.py                       # 10, 50 and 200 MB (a few minutes)
    python benchmarks/bench_corpus_memory.py --before              # and the old code path, per size
    python benchmarks/bench_corpus_memory.py --sizes 5,20 --batches 5   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_corpus(path: Path, megabytes: float, seed: int = 0, ascii_only: bool = False) -> int:
    """Write about `megabytes` MB of shuffled pydoc lines to `path`; returns the byte count.

    The pydoc text has a few characters beyond Latin-1 ("…", "—"), so CPython holds it at 2
    bytes a character; `ascii_only` drops them, for a text held at 1 byte a character.
    """
    from pydoc_data import topics

    lines = [line for key in sorted(topics.topics) for line in topics.topics[key].splitlines()]
    if ascii_only:
        lines = [line.encode("ascii", "ignore").decode("ascii") for line in lines]
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        while written < target:
            block = lines[:]
            rng.shuffle(block)
            text = "\n".join(block) + "\n"
            if written + len(text.encode("utf-8")) > target:
                text = text.encode("utf-8")[: target - written].decode("utf-8", errors="ignore")
                text = text[: text.rfind("\n") + 1] or text
            f.write(text)
            written += len(text.encode("utf-8"))
            if not text:
                break
    return path.stat().st_size


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def _read_text_file_before(path: Path) -> str:
    """`attnlab.data.text.read_text_file` before the issue (errors left out): bytes, str and
    the normalised str alive together."""
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise SystemExit(f"{path} is empty")
    return text


def before_path(path: str, times: dict) -> tuple:
    """The data path before the issue: read, `sorted(set(text))`, a list of ints, int64 ids."""
    import numpy as np

    t = time.perf_counter()
    text = _read_text_file_before(Path(path))
    times["read"] = time.perf_counter() - t
    t = time.perf_counter()
    chars = sorted(set(text))  # CharTokenizer.train
    times["vocab"] = time.perf_counter() - t
    t = time.perf_counter()
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.asarray([stoi[c] for c in text], dtype=np.int64)  # CharTokenizer.encode + encode_corpus
    times["encode"] = time.perf_counter() - t
    return text, len(chars), ids


def child(mode: str, path: str | None, batches: int, seq_len: int, batch_size: int) -> dict:
    """What runs in the fresh process: imports only ("baseline"), the data path ("data"), or
    the data path of before the issue ("before")."""
    t0 = time.perf_counter()
    import numpy as np
    import torch  # noqa: F401  (attnlab train imports it; part of the baseline)

    import attnlab  # noqa: F401
    from attnlab.data.text import LMData, load_text
    from attnlab.train.recipes import DataConfig, build_tokenizer_for, encode_corpus

    out: dict = {"mode": mode, "import_seconds": round(time.perf_counter() - t0, 2)}
    if mode == "before":
        times = {}
        text, vocab, ids = before_path(path, times)
        t = time.perf_counter()
    elif mode == "data":
        times = {}
        t = time.perf_counter()
        source = load_text(path)
        times["read"] = time.perf_counter() - t
        t = time.perf_counter()
        tokenizer = build_tokenizer_for(DataConfig(source=path, tokenizer="char"), source.text)
        times["vocab"] = time.perf_counter() - t
        t = time.perf_counter()
        ids = encode_corpus(tokenizer, source.text, source.name)
        times["encode"] = time.perf_counter() - t
        text, vocab = source.text, tokenizer.vocab_size
        t = time.perf_counter()
    if mode in ("data", "before"):
        data = LMData(ids, seq_len, 0.1)
        rng = np.random.default_rng(0)
        for _ in range(batches):
            batch = data.train_batch(batch_size, rng)
            assert batch["input_ids"].dtype == np.int64
        data.eval_batches(batch_size, batches)
        times["batches"] = time.perf_counter() - t
        out.update(
            chars=len(text),
            tokens=int(len(ids)),
            vocab=vocab,
            dtype=str(ids.dtype),
            text_bytes_per_char=round(sys.getsizeof(text) / max(len(text), 1), 2),  # 1, 2 or 4 in CPython
            memmap=isinstance(ids, np.memmap) or isinstance(getattr(ids, "base", None), np.memmap),
            seconds={k: round(v, 2) for k, v in times.items()},
        )
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return out


def run_child(mode: str, path: Path | None, args: argparse.Namespace, cache: Path) -> dict:
    env = dict(os.environ, ATTNLAB_CACHE=str(cache), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--batches",
        str(args.batches),
        "--seq-len",
        str(args.seq_len),
        "--batch-size",
        str(args.batch_size),
    ]
    if path is not None:
        cmd += ["--path", str(path)]
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {mode} process failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - t, 1)
    return result


def machine_line() -> str:
    import numpy
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        mem_gb = f", {int(mem.split()[1]) / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration):
        mem_gb = ""
    return (
        f"{cpu}, {os.cpu_count()} cores{mem_gb}; Python {platform.python_version()}, NumPy {numpy.__version__}, "
        f"torch {torch.__version__}; {platform.system()} {platform.release()}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10,50,200", help="corpus sizes in MB, comma-separated (default 10,50,200)")
    p.add_argument("--batches", type=int, default=20, help="training (and evaluation) batches drawn (default 20)")
    p.add_argument("--seq-len", type=int, default=256, help="context length of the batches (default 256)")
    p.add_argument("--batch-size", type=int, default=64, help="windows per batch (default 64)")
    p.add_argument("--before", action="store_true", help="also run the code path of before the issue for each size")
    p.add_argument(
        "--ascii", action="store_true", help="drop the text's non-ASCII characters (1 byte a char in memory)"
    )
    p.add_argument(
        "--keep", default=None, metavar="DIR", help="write the corpora and the cache here (default: a temp dir)"
    )
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--path", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.batches, args.seq_len, args.batch_size)))
        return

    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="attnlab-corpus-bench-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cache = work / "cache"
        base = run_child("baseline", None, args, cache)
        print(f"baseline (import attnlab, numpy, torch): peak RSS {base['peak_rss_mb']:.0f} MB", flush=True)
        rows = []
        results = []
        for size in sizes:
            path = work / f"corpus-{size:g}mb.txt"
            nbytes = make_corpus(path, size, ascii_only=args.ascii)
            runs = [("before", run_child("before", path, args, cache))] if args.before else []
            runs.append(("cold", run_child("data", path, args, cache)))
            if runs[-1][1]["memmap"]:
                runs.append(("warm", run_child("data", path, args, cache)))
            results += [r for _, r in runs]
            for label, r in runs:
                mb = nbytes / 1e6
                extra = r["peak_rss_mb"] - base["peak_rss_mb"]
                storage = ("memmap, " + ("built" if label == "cold" else "cache hit")) if r["memmap"] else "in memory"
                rows.append(
                    (
                        f"{mb:.0f}",
                        label,
                        f"{r['tokens']:,}",
                        r["dtype"],
                        storage,
                        f"{r['peak_rss_mb']:.0f}",
                        f"{extra:.0f}",
                        f"{extra / mb:.2f}",
                        f"{r['peak_rss_mb'] / mb:.1f}",
                        " / ".join(f"{r['seconds'][k]:.1f}" for k in ("read", "vocab", "encode", "batches")),
                    )
                )
                print(f"  {mb:.0f} MB ({label}): peak RSS {r['peak_rss_mb']:.0f} MB, {r}", flush=True)
            path.unlink()
    print()
    print(f"Machine: {machine_line()}")
    print(f"Baseline: a process that imports attnlab, NumPy and torch peaks at {base['peak_rss_mb']:.0f} MB RSS.")
    print(
        f"Batches: {args.batches} training + {args.batches} evaluation batches of {args.batch_size} x {args.seq_len} tokens."
    )
    print(
        f"Text: shuffled pydoc lines{', ASCII only' if args.ascii else ''}; held by CPython at "
        f"{sorted({r['text_bytes_per_char'] for r in results})} bytes a character."
    )
    print()
    print(
        "| text MB | run | tokens | ids dtype | ids storage | peak RSS MB | minus baseline MB | (RSS - baseline) per MB of text "
        "| RSS per MB of text | seconds: read / vocab / encode / batches |"
    )
    print("|---:|---|---:|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
