#!/usr/bin/env bash
# Installs what etcd-backup's demo, tests and benchmarks need on Debian (run as root):
# etcd 3.4 server and etcdctl (real peers), age and zstd (interop), the AWS CLI (S3 interop),
# openssl (test certificates), GNU time (peak memory in bench/), Chromium (status page test), kubectl
# (renders the kustomize bases), then the npm packages (Node 24 included), then, when Go is there, the real
# peers built from their Go modules (etcd 3.6 and 3.5, MinIO, fake-gcs-server: scripts/install-peers.sh, cached
# in .peers/).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then
  packages="etcd-server etcd-client age zstd awscli openssl time tar ca-certificates chromium fonts-dejavu-core"
  # Some images ship their own kubectl package, which owns /usr/bin/kubectl; Debian's would conflict.
  command -v kubectl >/dev/null 2>&1 || packages="$packages kubernetes-client"
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $packages >/dev/null
fi
# `npm install` (with the committed lock file) rather than `npm ci`: npm 11.19 writes lock files without the
# other platforms' optional packages (Biome's binaries) and then its `npm ci` refuses those same files.
npm install --no-audit --no-fund
# Go modules (this machine's Go, through the module proxy): the real peers the tests target by default, built
# into .peers/ (etcd 3.6 and 3.5, MinIO and fake-gcs-server: install-peers.sh; age with post-quantum keys: install-age.sh), and
# API definitions for the tests. Without Go the peers are not built: tests that need them fail in CI (CI=true)
# and are skipped with a printed reason elsewhere.
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
if command -v go >/dev/null 2>&1; then
  bash "$(dirname "$0")/install-peers.sh"
  bash "$(dirname "$0")/install-age.sh" # age with post-quantum keys, built from its Go module
  bash "$(dirname "$0")/fetch-k8s-api.sh" >/dev/null # k8s.io/api definitions and fixtures (issue 25)
else
  echo "install-deps: go not found: etcd 3.6/3.5, MinIO and age peers not built (tests needing them will skip)" >&2
fi
