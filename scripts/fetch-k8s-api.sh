#!/usr/bin/env bash
# Downloads, through the Go module proxy, the Kubernetes API modules whose generated.proto files and types are
# the source of src/kubernetes/schema/ (scripts/generate-k8s-schema.ts) and whose testdata/ fixtures the tests
# decode (test/kubernetes/fixtures.test.ts). Prints one `module=directory` line per module (the module cache).
# The release is pinned here; regenerating for another one: K8S_API_VERSION=v0.36.0 node scripts/generate-k8s-schema.ts
set -euo pipefail
version="${K8S_API_VERSION:-v0.35.10}"
go="$(command -v go || echo /usr/local/go/bin/go)"
if [ ! -x "$go" ] && ! command -v "$go" >/dev/null 2>&1; then
  echo "fetch-k8s-api: go is not installed (needed to download the k8s.io API modules)" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# `go mod download` of a module by name needs no go.mod; GOFLAGS=-mod=mod keeps a caller's vendoring out of it.
cd "$tmp"
for module in k8s.io/api k8s.io/apimachinery k8s.io/apiextensions-apiserver k8s.io/kube-aggregator; do
  dir="$(GOFLAGS=-mod=mod "$go" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "fetch-k8s-api: could not download $module@$version" >&2
    exit 1
  fi
  echo "$module=$dir"
done
