#!/usr/bin/env bash
# GGUF generation speed, oerkit against llama.cpp on the same GGUF files, prompts and threads, in
# one run: generated tokens/s, segments/s and prompt tokens/s for oerkit at batch 1, 4, 8, 16 and
# llama.cpp single stream; peak RSS of both; whether the greedy outputs agree.
#
# Usage: benches/gguf_vs_llamacpp.sh [MODEL.gguf ...]
#   (default: the cached SmolLM2-135M and Qwen2.5-Coder-0.5B files)
# Environment: THREADS (2), SEGMENTS (16), MAX_NEW_TOKENS (32), BATCHES (1,4,8,16),
#   LLAMA_PY (/tmp/venv-llama/bin/python: a Python with llama-cpp-python, e.g.
#   `python3 -m venv /tmp/venv-llama && CMAKE_ARGS="-DGGML_BLAS=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF
#   -DGGML_OPENMP=ON" /tmp/venv-llama/bin/pip install llama-cpp-python==0.3.36 numpy`),
#   OMP_WAIT_POLICY for llama.cpp (passive), OERKIT_MODELS (model cache), CARGO_TARGET_DIR.
# Columns: wall-clock rates (prompt processing included), and generated tokens per CPU-second of
# the whole process (all threads), which is less sensitive to other load on the machine.
# Prompts: the first SEGMENTS lines of the OpenStax statistics corpus in a translate-to-Spanish chat
# prompt, tokenized once by oerkit and fed to both engines as token ids; greedy decoding, stop at
# end-of-generation or MAX_NEW_TOKENS. The machine's load average is printed before each model:
# on a shared machine, rerun when it is near zero.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
SEGMENTS=${SEGMENTS:-16}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-32}
BATCHES=${BATCHES:-1,4,8,16}
LLAMA_PY=${LLAMA_PY:-/tmp/venv-llama/bin/python}
# OpenMP threads that spin while waiting collapse when the machine is oversubscribed (0.6 instead
# of 11 tokens/s measured here under load 20); passive waiting is fair on a shared machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# As the oerkit CLI does (crates/oerkit/src/main.rs): candle's elementwise ops on the calling thread.
export CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1}
MODELS_DIR=${OERKIT_MODELS:-$HOME/.cache/oerkit/models}
if [ "$#" -gt 0 ]; then
    models=("$@")
else
    models=("$MODELS_DIR/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
            "$MODELS_DIR/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf")
fi
if ! "$LLAMA_PY" -c "import llama_cpp" 2>/dev/null; then
    echo "error: $LLAMA_PY cannot import llama_cpp; set LLAMA_PY to a Python with llama-cpp-python" >&2
    exit 1
fi

cargo build --release -q -p oerkit-benches --bin gguf_generate
bin="${CARGO_TARGET_DIR:-target}/release/gguf_generate"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for model in "${models[@]}"; do
    echo
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$bin" "$model" --threads "$THREADS" \
        --segments "$SEGMENTS" --max-new-tokens "$MAX_NEW_TOKENS" --batches "$BATCHES" \
        --dump-prompts "$work/prompts.json" --dump-outputs "$work/outputs.json"
    "$LLAMA_PY" benches/llamacpp_generate.py "$model" "$work/prompts.json" "$MAX_NEW_TOKENS" \
        "$THREADS" "$work/outputs.json"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done
