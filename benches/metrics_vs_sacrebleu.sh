#!/usr/bin/env bash
# oerkit-metrics vs sacrebleu 2.5.1: corpus BLEU / chrF / TER on 3,000 TICO-19 segment pairs.
# Creates a scratch venv with sacrebleu outside the repository if needed, then runs the bench.
set -euo pipefail
VENV="${SACREBLEU_VENV:-/tmp/venv-sb}"
if ! "$VENV/bin/python" -c 'import sacrebleu; assert sacrebleu.__version__ == "2.5.1"' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'sacrebleu==2.5.1'
fi
cd "$(dirname "$0")/.."
exec cargo run --release -p oerkit-benches --bin metrics_vs_sacrebleu -- --python "$VENV/bin/python" "$@"
