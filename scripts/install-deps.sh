#!/usr/bin/env bash
# Installs what etcd-backup's demo, tests and benchmarks need on Debian (run as root):
# etcd 3.4 server and etcdctl (real peers), age and zstd (interop), the AWS CLI (S3 interop),
# openssl (test certificates), GNU time (peak memory in bench/), Chromium (status page test), kubectl
# (renders the kustomize bases), then the npm packages (Node 24 included).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends etcd-server etcd-client age zstd awscli openssl time tar ca-certificates chromium kubernetes-client fonts-dejavu-core >/dev/null
fi
npm ci --no-audit --no-fund
