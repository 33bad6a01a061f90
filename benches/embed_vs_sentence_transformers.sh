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
repeat=2
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
"${CARGO_TARGET_DIR:-target}/release/embed_throughput" --model "$model_dir" --threads "$threads" \
  --batches "$batches" --repeat "$repeat" --dump-texts "$work/texts.json" --json > "$work/oerkit.json"

"$VENV/bin/python" - "$model_dir" "$work/texts.json" "$threads" "$batches" "$repeat" "$work/oerkit.json" <<'PY'
import json, resource, sys, time

model_dir, texts_path, threads, batches, repeat, oerkit_path = sys.argv[1:]
threads, repeat = int(threads), int(repeat)
import torch
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
import sentence_transformers
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(model_dir, device="cpu")
resources = json.load(open(texts_path))
n_texts = sum(len(r["texts"]) for r in resources)
rows = json.load(open(oerkit_path))
for batch in [int(b) for b in batches.split(",")]:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        produced = 0
        for r in resources:
            produced += len(model.encode(r["texts"], batch_size=batch, show_progress_bar=False))
        best = min(best, time.perf_counter() - started)
        assert produced == n_texts
    rows.append({
        "engine": f"sentence-transformers {sentence_transformers.__version__} (torch {torch.__version__})",
        "batch": batch, "threads": threads, "seconds": best,
        "embeddings_per_s": n_texts / best, "resources_per_s": len(resources) / best,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
print(f"{len(resources)} resources, {n_texts} texts; best of {repeat} runs; {threads} threads")
print("| engine | batch | threads | seconds | embeddings/s | resources/s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in sorted(rows, key=lambda r: (r["batch"], r["engine"])):
    print(f"| {r['engine']} | {r['batch']} | {r['threads']} | {r['seconds']:.2f} | "
          f"{r['embeddings_per_s']:.1f} | {r['resources_per_s']:.2f} | {r['peak_rss_mib']:.0f} |")
PY
