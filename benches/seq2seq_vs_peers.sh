#!/usr/bin/env bash
# oerkit's seq2seq engine vs Hugging Face transformers (PyTorch CPU) and CTranslate2 (float32, int8) on a
# randomly initialised MarianMT of OPUS-MT's real size (benches/seq2seq/make_model.py): the first 200
# OpenStax Statistics English segments, the same threads, every output forced to MAX_NEW tokens
# (min = max new tokens), beam 1 and 4, batch 1 and 32. Each configuration runs in its own process,
# REPEAT times; the table shows every run's target tokens/s, the best, and peak RSS.
#
#   benches/seq2seq_vs_peers.sh                 # everything (creates /tmp/venv-s2s if needed)
#   ENGINES="hf ct2-float32" BEAMS=1 benches/seq2seq_vs_peers.sh
#
# Env: VENV (default /tmp/venv-s2s), OERKIT_SHARED, BENCH_DIR (default ~/.cache/oerkit/bench), SEGMENTS (200),
# THREADS (2), MAX_NEW (32), REPEAT (2), BEAMS ("1 4"), BATCHES ("1 32"),
# ENGINES ("oerkit oerkit-q8 hf ct2-float32 ct2-int8"), TIMEOUT per run in seconds (1800).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${VENV:-/tmp/venv-s2s}"
SHARED="${OERKIT_SHARED:-$ROOT/../shared}"
BENCH_DIR="${BENCH_DIR:-$HOME/.cache/oerkit/bench}"
SEGMENTS="${SEGMENTS:-200}"
THREADS="${THREADS:-2}"
MAX_NEW="${MAX_NEW:-32}"
REPEAT="${REPEAT:-2}"
BEAMS="${BEAMS:-1 4}"
BATCHES="${BATCHES:-1 32}"
ENGINES="${ENGINES:-oerkit oerkit-q8 hf ct2-float32 ct2-int8}"
TIMEOUT="${TIMEOUT:-1800}"
MODEL="$BENCH_DIR/opus-size-marian"

if ! "$VENV/bin/python" -c 'import torch, transformers, sentencepiece, ctranslate2, google.protobuf' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch transformers sentencepiece protobuf ctranslate2
fi
"$VENV/bin/python" benches/seq2seq/make_model.py --out "$MODEL"

INPUT="$BENCH_DIR/seq2seq-input.txt"
# awk, not grep | head: under pipefail a head that stops reading early would fail the script.
awk -v n="$SEGMENTS" 'NF { print; if (++k == n) exit }' "$SHARED/corpora/parallel/openstax-statistics/eng-spa.eng" > "$INPUT"

case " $ENGINES " in
  *" oerkit"*)
    cargo build --release -p oerkit-benches --bin seq2seq_generate
    OERKIT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/seq2seq_generate" ;;
esac

RESULTS="$BENCH_DIR/seq2seq-results-$(date +%Y%m%d-%H%M%S).jsonl"
: > "$RESULTS"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); results: $RESULTS" >&2

run_one() { # engine beam batch
  local engine=$1 beam=$2 batch=$3
  local common=(--input "$INPUT" --beam "$beam" --batch "$batch" --threads "$THREADS" --max-new-tokens "$MAX_NEW")
  case "$engine" in
    oerkit) exec "$OERKIT_BIN" --model "$MODEL" "${common[@]}" --force-length ;;
    oerkit-q8) exec "$OERKIT_BIN" --model "$MODEL" "${common[@]}" --force-length --quantize q8 ;;
    hf) exec "$VENV/bin/python" benches/seq2seq/peers.py --engine hf --model "$MODEL" --segments "$SEGMENTS" "${common[@]}" ;;
    ct2-*) exec "$VENV/bin/python" benches/seq2seq/peers.py --engine ct2 --name "$engine" --model "$MODEL-$engine" \
             --tokenizer "$MODEL" --segments "$SEGMENTS" "${common[@]}" ;;
    *) echo "unknown engine $engine" >&2; return 2 ;;
  esac
}

export -f run_one
export INPUT THREADS MAX_NEW MODEL SEGMENTS VENV OERKIT_BIN="${OERKIT_BIN:-}"
export OMP_NUM_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS"
# OpenMP threads (PyTorch, CTranslate2) busy-wait between parallel regions by default; on a machine
# shared with other jobs that burns the time slices of descheduled peers (measured: CT2 float32 12 vs
# 69 tok/s, transformers 8 vs 30, beam 1 batch 32 at load 12). The Rust bin avoids candle's busy-waiting
# pool the same way (see seq2seq_generate.rs).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
for beam in $BEAMS; do
  for batch in $BATCHES; do
    for engine in $ENGINES; do
      for run in $(seq "$REPEAT"); do
        echo "== $engine beam $beam batch $batch run $run (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        # The label is set here so that the Rust bin's q8 runs read "oerkit-q8".
        # run_one execs the engine, so timeout's signal reaches it (not just a wrapper shell).
        if line=$(timeout -k 10 "$TIMEOUT" bash -c 'run_one "$@"' _ "$engine" "$beam" "$batch" | tail -n 1); then
          echo "$line" | "$VENV/bin/python" -c 'import json,sys; r=json.loads(sys.stdin.read()); r["engine"]=sys.argv[1]; r["run"]=int(sys.argv[2]); print(json.dumps(r))' "$engine" "$run" | tee -a "$RESULTS" >&2
        else
          echo "   failed or timed out" >&2
        fi
      done
    done
  done
done

"$VENV/bin/python" - "$RESULTS" <<'EOF'
import json, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["beam"], r["batch"], r["engine"])].append(r)
best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in runs.items()}
print("| beam | batch | engine | target tok/s (each run) | best tok/s | tok/CPU-s | peak RSS MB | vs HF | vs CT2 f32 |")
print("|---:|---:|---|---|---:|---:|---:|---:|---:|")
for (beam, batch, engine), r in sorted(best.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
    each = ", ".join(f'{x["tokens_per_s"]:.0f}' for x in runs[(beam, batch, engine)])
    def ratio(peer):
        p = best.get((beam, batch, peer))
        return f'{r["tokens_per_s"] / p["tokens_per_s"]:.2f}x' if p else "-"
    cpu = f'{r["tokens_per_cpu_s"]:.0f}' if "tokens_per_cpu_s" in r else "-"
    print(f'| {beam} | {batch} | {engine} | {each} | {r["tokens_per_s"]:.0f} | {cpu} | {r["peak_rss_mb"]:.0f} | {ratio("hf")} | {ratio("ct2-float32")} |')
EOF
