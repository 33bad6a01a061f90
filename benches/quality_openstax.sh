#!/usr/bin/env bash
# Translation quality on the first N (200) segments of the OpenStax Statistics en->es parallel corpus:
#   qwen-oerkit    Qwen2.5-Coder-0.5B-Instruct (GGUF) through `oerkit translate --format lines` (release
#                  build, shipped prompt of models/prompts.toml, greedy)
#   qwen-llamacpp  the same GGUF through llama.cpp (llama-cpp-python), same segments, same rendered prompt,
#                  greedy (benches/quality_llamacpp.py)
#   apertium       Apertium eng-spa through `oerkit translate --model apertium:eng-spa`
# Scores: chrF and BLEU with sacrebleu's default settings (`oerkit eval`, sacrebleu-exact), and the wall time
# of each run. Prints a Markdown table on stdout; everything else goes to stderr and $WORK.
#
#   benches/quality_openstax.sh                         # all three
#   SYSTEMS="apertium qwen-oerkit" benches/quality_openstax.sh
#
# Environment: N (200), THREADS (2), BATCH (8, oerkit's default), WORK (a fresh /tmp dir),
# OERKIT_SHARED (../shared), OERKIT (a built oerkit; default: cargo build --release -p oerkit),
# LLAMA_PYTHON (/tmp/venv-llama/bin/python, a venv with llama-cpp-python built for this CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200}
THREADS=${THREADS:-2}
BATCH=${BATCH:-8}
SYSTEMS=${SYSTEMS:-"qwen-oerkit qwen-llamacpp apertium"}
LLAMA_PYTHON=${LLAMA_PYTHON:-/tmp/venv-llama/bin/python}
QWEN=qwen2.5-coder-0.5b-instruct
shared=${OERKIT_SHARED:-$(cd .. && pwd)/shared}
corpus=$shared/corpora/parallel/openstax-statistics
WORK=${WORK:-$(mktemp -d /tmp/oerkit-quality.XXXXXX)}
mkdir -p "$WORK"

for f in "$corpus/eng-spa.eng" "$corpus/eng-spa.spa"; do
  [[ -f $f ]] || { echo "missing $f (set OERKIT_SHARED)" >&2; exit 1; }
done

if [[ -z ${OERKIT:-} ]]; then
  cargo build --release --locked -p oerkit >&2
  OERKIT=${CARGO_TARGET_DIR:-target}/release/oerkit
fi

head -n "$N" "$corpus/eng-spa.eng" > "$WORK/openstax.txt"
head -n "$N" "$corpus/eng-spa.spa" > "$WORK/ref.txt"
echo "work dir: $WORK ($N segments)" >&2

# Translates with oerkit into $WORK/<system>/openstax.txt; prints the milliseconds.
oerkit_translate() {
  local system=$1 model=$2 batch=$3
  local start end
  start=$(date +%s%N)
  "$OERKIT" translate "$WORK/openstax.txt" --format lines --from en --to es --license CC-BY-4.0 \
    --model "$model" --threads "$THREADS" --batch "$batch" --out "$WORK/$system" > "$WORK/$system.jsonl"
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 ))"
}

declare -A millis hyp
for system in $SYSTEMS; do
  echo "== $system" >&2
  case $system in
    qwen-oerkit)
      millis[$system]=$(oerkit_translate "$system" "$QWEN" "$BATCH")
      hyp[$system]=$WORK/$system/openstax.txt
      ;;
    apertium)
      # One Apertium process per engine call: a large batch avoids paying its start-up per 8 segments.
      millis[$system]=$(oerkit_translate "$system" apertium:eng-spa 1024)
      hyp[$system]=$WORK/$system/openstax.txt
      ;;
    qwen-llamacpp)
      [[ -x $LLAMA_PYTHON ]] || { echo "no $LLAMA_PYTHON: create a venv with llama-cpp-python" >&2; exit 1; }
      model_file=$("$OERKIT" models info "$QWEN" --json | python3 -c \
        'import json,sys; m=json.load(sys.stdin); print(m["dir"] + "/" + m["files"][0]["name"])')
      "$OERKIT" extract "$WORK/openstax.txt" --format lines > "$WORK/units.jsonl"
      start=$(date +%s%N)
      "$LLAMA_PYTHON" benches/quality_llamacpp.py "$model_file" "$WORK/units.jsonl" models/prompts.toml \
        "$WORK/$system.txt" --threads "$THREADS" --batch "$BATCH" > "$WORK/$system.json"
      end=$(date +%s%N)
      millis[$system]=$(( (end - start) / 1000000 ))
      hyp[$system]=$WORK/$system.txt
      ;;
    *) echo "unknown system $system" >&2; exit 1 ;;
  esac
done

echo
echo "OpenStax Statistics en->es, first $N segments, $THREADS threads (sacrebleu default chrF and BLEU)"
echo
echo "| system | chrF | BLEU | seconds |"
echo "|---|---|---|---|"
for system in $SYSTEMS; do
  scores=$("$OERKIT" eval --hyp "${hyp[$system]}" --ref "$WORK/ref.txt" --metrics chrf,bleu --json)
  read -r chrf bleu < <(echo "$scores" | python3 -c \
    'import json,sys; s={o["name"]: o["score"] for o in json.load(sys.stdin)}; print("%.2f %.2f" % (s["chrF2"], s["BLEU"]))')
  printf '| %s | %s | %s | %d.%d |\n' "$system" "$chrf" "$bleu" $(( ${millis[$system]} / 1000 )) $(( ${millis[$system]} % 1000 / 100 ))
done
