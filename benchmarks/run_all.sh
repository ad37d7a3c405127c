#!/usr/bin/env bash
# Run every benchmark one after the other (never two at once: they time the CPU) and keep
# each report in OUT/<name>.md, the log beside it. The figures in benchmarks/RESULTS.md
# come from these reports. On 2 cores the whole set takes about 1.5 hours.
#
#   benchmarks/run_all.sh [OUT]            # default OUT: runs/benchmarks
#   ONLY="gpt vision" benchmarks/run_all.sh # a subset: gpt llama numpy seq2seq minilm vision sequence points rnn_seq2seq bio
#
# Needs ../shared/data (tiny Shakespeare, MNIST t10k, FLIP SS3) and the labs extras
# (sentence-transformers for minilm). Run it on an otherwise idle machine.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-runs/benchmarks}
PY=${PYTHON:-.venv/bin/python}
ONLY=${ONLY:-"gpt llama numpy seq2seq minilm vision sequence points rnn_seq2seq bio"}
mkdir -p "$OUT"

run() {  # run NAME COMMAND...: the report on stdout goes to OUT/NAME.md, stderr to OUT/NAME.log
    local name=$1
    shift
    case " $ONLY " in *" $name "*) ;; *) return 0 ;; esac
    echo "== $name: $*" >&2
    local start=$SECONDS
    if "$@" >"$OUT/$name.md" 2>"$OUT/$name.log"; then
        echo "   done in $((SECONDS - start)) s -> $OUT/$name.md" >&2
    else
        echo "   FAILED after $((SECONDS - start)) s (see $OUT/$name.log)" >&2
    fi
}

run gpt "$PY" benchmarks/bench_gpt.py
run llama "$PY" benchmarks/bench_llama.py
run numpy "$PY" benchmarks/bench_numpy_engine.py --preset baby --iters 30 --rounds 5 --threads 2 --train-iters 2000
run seq2seq "$PY" benchmarks/bench_seq2seq.py --threads 2 --out "$OUT/seq2seq"
run minilm "$PY" benchmarks/minilm_embed.py --threads 2
run vision "$PY" benchmarks/bench_vision.py --out "$OUT/vision"
run sequence "$PY" benchmarks/bench_sequence.py --out "$OUT/sequence"
run points "$PY" benchmarks/bench_points.py --out "$OUT/points"
run rnn_seq2seq "$PY" benchmarks/bench_rnn_seq2seq.py --threads 2 --figures "$OUT/rnn_seq2seq"
run bio "$PY" benchmarks/bench_bio.py --out "$OUT/bio" --reuse
