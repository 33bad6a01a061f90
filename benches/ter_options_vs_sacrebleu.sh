#!/usr/bin/env bash
# TER options (normalized, no_punct, asian_support, case): oerkit-metrics vs sacrebleu 2.5.1,
# segment by segment on TICO-19, NTREX-128 (2 references) and MLQE-PE en-zh.
# Creates a scratch venv with sacrebleu outside the repository if needed, then runs the check.
set -euo pipefail
VENV="${SACREBLEU_VENV:-/tmp/venv-sb}"
if ! "$VENV/bin/python" -c 'import sacrebleu; assert sacrebleu.__version__ == "2.5.1"' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'sacrebleu==2.5.1'
fi
cd "$(dirname "$0")/.."
exec cargo run --release -p oerkit-benches --bin ter_options_vs_sacrebleu -- --python "$VENV/bin/python" "$@"
