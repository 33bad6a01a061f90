#!/usr/bin/env bash
# oerkit-embed vs Python sentence-transformers: all-MiniLM-L6-v2 on CPU, the same texts (every
# translatable unit of each Markdown/CNXML/HTML file of shared/corpora/oer), the same model
# directory, the same thread count, batch 1 and 32. Prints one table.
#
#   benches/embed_vs_sentence_transformers.sh [--threads N] [--batches 1,32] [--repeat N]
#
# Creates a scratch venv with torch + sentence-transformers outside the repository if needed
# ($ST_VENV, default /tmp/venv-st). Model: the cached catalog model all-minilm-l6-v2
# ($OERKIT_MODELS, else ~/.cache/oerkit/models).
set -euo pipefail
VENV="${ST_VENV:-/tmp/venv-st}"
threads=2
batches=1,32
repeat=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if ! "$VENV/bin/python" -c 'import sentence_transformers, torch' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch sentence-transformers
fi
cd "$(dirname "$0")/.."
model_dir="${OERKIT_MODELS:-$HOME/.cache/oerkit/models}/all-minilm-l6-v2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

export RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
cargo build --quiet --release -p oerkit-benches --bin embed_throughput
cat > "$work/st.py" <<'PY'
import json, resource, sys, time

model_dir, texts_path, threads, batches, out_path = sys.argv[1:]
threads = int(threads)
import torch
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
import sentence_transformers
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(model_dir, device="cpu")
resources = json.load(open(texts_path))
n_texts = sum(len(r["texts"]) for r in resources)
rows = []
for batch in [int(b) for b in batches.split(",")]:
    started = time.perf_counter()
    produced = 0
    for r in resources:
        produced += len(model.encode(r["texts"], batch_size=batch, show_progress_bar=False))
    seconds = time.perf_counter() - started
    assert produced == n_texts
    rows.append({
        "engine": f"sentence-transformers {sentence_transformers.__version__} (torch {torch.__version__})",
        "batch": batch, "threads": threads, "seconds": seconds,
        "embeddings_per_s": n_texts / seconds, "resources_per_s": len(resources) / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "n_texts": n_texts, "n_resources": len(resources),
    })
json.dump(rows, open(out_path, "w"))
PY

for round in $(seq 1 "$repeat"); do
  echo "round $round of $repeat" >&2
  "${CARGO_TARGET_DIR:-target}/release/embed_throughput" --model "$model_dir" --threads "$threads" \
    --batches "$batches" --repeat 1 --dump-texts "$work/texts.json" --json > "$work/oerkit-$round.json"
  "$VENV/bin/python" "$work/st.py" "$model_dir" "$work/texts.json" "$threads" "$batches" \
    "$work/st-$round.json"
done

python3 - "$work" "$repeat" "$threads" <<'PY'
import glob, json, statistics, sys

work, repeat, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = json.load(open(f"{work}/texts.json"))
n_texts = sum(len(r["texts"]) for r in texts)
runs = {}
for path in sorted(glob.glob(f"{work}/*-*.json")):
    for row in json.load(open(path)):
        runs.setdefault((row["batch"], row["engine"]), []).append(row)
print(f"{len(texts)} resources, {n_texts} texts; {threads} threads; median of {repeat} alternating rounds")
print("| engine | batch | threads | seconds (median) | embeddings/s (median) | embeddings/s (min-max) | resources/s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for (batch, engine), rows in sorted(runs.items()):
    seconds = statistics.median(r["seconds"] for r in rows)
    rates = [n_texts / r["seconds"] for r in rows]
    rss = max(r["peak_rss_mib"] or 0 for r in rows)
    print(f"| {engine} | {batch} | {threads} | {seconds:.2f} | {n_texts / seconds:.1f} | "
          f"{min(rates):.1f}-{max(rates):.1f} | {len(texts) / seconds:.2f} | {rss:.0f} |")
PY
