#!/usr/bin/env bash
# Builds the age CLI release that knows post-quantum keys (age1pq1…, age-keygen -pq) from its Go module
# filippo.io/age (no prebuilt binary), for the interop tests in test/age/pq-interop.test.ts:
#   .peers/age-<version>/bin/{age,age-keygen,age-inspect,age-plugin-batchpass}
# Debian's age (1.1.1, /usr/bin/age) predates post-quantum keys; it stays what the classic interop test uses.
# `go install module@version` builds with the module's own go.mod/go.sum, checked against the Go checksum
# database, so the version below pins the whole dependency graph.
# Built once: a stamp records what it was built from, and a later run that finds it matching only prints
# the version. The build goes to a temporary folder renamed into place with the stamp written last, so an
# interrupted build never looks complete.
# Usage: bash scripts/install-age.sh
set -euo pipefail
version=v1.3.2
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.peers/age-${version#v}"
PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "install-age: go is not on PATH (nor in /usr/local/go/bin); age ${version#v} not built" >&2
  exit 1
fi
# Static, reproducible binaries: no cgo, no build paths or VCS stamps embedded; the local toolchain only.
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local
digest=$({ echo "filippo.io/age@$version"; go version; echo "$GOFLAGS CGO_ENABLED=$CGO_ENABLED"; } | sha256sum | cut -d' ' -f1)
stamp="$dest/.built-from"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
  echo "install-age: age-${version#v}: cached in ${dest#"$root"/}"
else
  tmp="$dest.partial-$$"
  started=$SECONDS
  rm -rf "$dest" "$tmp"
  mkdir -p "$tmp/bin"
  trap 'rm -rf "$tmp"' EXIT
  echo "install-age: age-${version#v}: building from filippo.io/age@$version (one time) ..."
  GOBIN="$tmp/bin" go install "filippo.io/age/cmd/...@$version"
  mv "$tmp" "$dest"
  trap - EXIT
  echo "$digest" >"$stamp"
  echo "install-age: age-${version#v}: built in $((SECONDS - started)) s into ${dest#"$root"/}"
fi
echo "install-age: age-${version#v}: age $("$dest/bin/age" --version)"
