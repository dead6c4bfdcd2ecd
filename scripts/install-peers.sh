#!/usr/bin/env bash
# Builds the real peers that the tests target, from their published Go modules (no prebuilt binary):
#   etcd 3.6 and 3.5  -> .peers/etcd-<version>/bin/{etcd,etcdctl,etcdutl}
#   MinIO server      -> .peers/minio-<version>/bin/minio
#   fake-gcs-server   -> .peers/fake-gcs-server-<version>/bin/fake-gcs-server (Google Cloud Storage emulator)
#   helm              -> .peers/helm-<version>/bin/helm (renders the chart in the tests)
#   talos-backup      -> .peers/talos-backup-<version>/bin/talos-backup (only when asked for, and only with its
#                        recipe: the module proxy here refuses the siderolabs modules; see scripts/peers/README.md)
#   kube-apiserver    -> .peers/kube-apiserver-<version>/bin/kube-apiserver (a cold build took 620 s of both cores
#                        here, with the module cache warm and the machine loaded; it is the operator's and the
#                        kubeconfig backup's test target, so it is built by default)
# Each peer's exact version and whole dependency graph are pinned by a go.mod/go.sum of ours under
# scripts/peers/<peer>/ (etcd's own go.mod files carry `replace` lines, so `go install module@version`
# refuses them; requiring the modules from a module of ours is the supported way to build them).
# A peer is built once: a stamp file records what it was built from, and a later run that finds the
# stamp matching only prints the versions (seconds). Builds go to a temporary folder renamed into place
# with the stamp written last, so an interrupted build never looks complete.
# Usage: bash scripts/install-peers.sh [peer...]   (peers: etcd-3.6 etcd-3.5 minio fake-gcs-server helm talos-backup
#        kube-apiserver; default: all but talos-backup, which has no recipe here; ETCD_BACKUP_PEERS names the peers)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
recipes="$root/scripts/peers"
out="$root/.peers"
PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "install-peers: go is not on PATH (nor in /usr/local/go/bin); real peers not built" >&2
  exit 1
fi
# Static, reproducible binaries: no cgo, no build paths or VCS stamps embedded; the local toolchain only.
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=readonly" GOTOOLCHAIN=local

# The version of module $2 that recipe folder $1 requires.
required_version() {
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

# What a build depends on: the recipe and the toolchain. A change to either rebuilds.
recipe_digest() {
  { cat "$1/go.mod" "$1/go.sum"; go version; echo "$GOFLAGS CGO_ENABLED=$CGO_ENABLED ${PEER_LDFLAGS:-}"; } | sha256sum | cut -d' ' -f1
}

# build_peer NAME RECIPE MODULE "BINARY=PACKAGE ..." VERSION-COMMAND...
build_peer() {
  local name=$1 recipe=$2 module=$3 binaries=$4
  shift 4
  local version dest stamp digest
  version=$(required_version "$recipe" "$module")
  dest="$out/$name-${version#v}"
  stamp="$dest/.built-from"
  digest=$(recipe_digest "$recipe")
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    echo "install-peers: $name-${version#v}: cached in ${dest#"$root"/}"
  else
    local tmp="$dest.partial-$$" started=$SECONDS
    rm -rf "$dest" "$tmp"
    mkdir -p "$tmp/bin"
    echo "install-peers: $name-${version#v}: building from $module@$version (one time) ..."
    local pair
    for pair in $binaries; do
      (cd "$recipe" && go build -ldflags "${PEER_LDFLAGS:-}" -o "$tmp/bin/${pair%%=*}" "${pair#*=}")
    done
    mv "$tmp" "$dest"
    echo "$digest" >"$stamp"
    echo "install-peers: $name-${version#v}: built in $((SECONDS - started)) s into ${dest#"$root"/}"
  fi
  # Print the version each binary reports, so a log shows exactly what the tests ran against.
  "$@" "$dest/bin" | sed "s/^/install-peers: $name-${version#v}: /"
}

etcd_versions() {
  "$1/etcd" --version | sed -n 1p
  "$1/etcdctl" version | sed -n 1p
  "$1/etcdutl" version | sed -n 1p
}

minio_version() {
  "$1/minio" --version | sed -n 1p
}

# talos-backup has no version flag (it runs a backup whatever its arguments); the module version it was built
# from is in the binary's build information.
# fake-gcs-server has no version flag either; its module version is in the binary's build information.
fake_gcs_server_version() {
  go version -m "$1/fake-gcs-server" | awk '$1 == "mod" { print "fake-gcs-server", $3 }'
}

talos_backup_version() {
  go version -m "$1/talos-backup" | awk '$1 == "mod" { print "talos-backup", $3 }'
}

helm_version() {
  "$1/helm" version --short
}

kube_apiserver_version() {
  "$1/kube-apiserver" --version
}

# Default set: every peer with a recipe (talos-backup has none here); ETCD_BACKUP_PEERS names the peers to build
# ("all" is the default set).
default_peers="etcd-3.6 etcd-3.5 minio fake-gcs-server kube-apiserver helm"
case ${ETCD_BACKUP_PEERS:-} in
  "") ;;
  all) ;;
  *) default_peers=$ETCD_BACKUP_PEERS ;;
esac
selected=${*:-$default_peers}
for peer in $selected; do
  case $peer in
    etcd-3.6 | etcd-3.5)
      build_peer "etcd" "$recipes/$peer" go.etcd.io/etcd/server/v3 \
        "etcd=go.etcd.io/etcd/server/v3 etcdctl=go.etcd.io/etcd/etcdctl/v3 etcdutl=go.etcd.io/etcd/etcdutl/v3" \
        etcd_versions
      ;;
    minio)
      # MinIO's version is stamped by its release tooling (ldflags); without it `minio --version` says
      # DEVELOPMENT.GOGET. Stamp the pinned module version's commit and time instead, as a release would.
      minio_module=$(cd "$recipes/minio" && go list -m -json github.com/minio/minio)
      minio_time=$(sed -n 's/.*"Time": "\([^"]*\)".*/\1/p' <<<"$minio_module")
      minio_commit=$(sed -n 's/.*"Version": "v0.0.0-[0-9]*-\([0-9a-f]*\)".*/\1/p' <<<"$minio_module")
      PEER_LDFLAGS="-X github.com/minio/minio/cmd.Version=$minio_time"
      PEER_LDFLAGS+=" -X github.com/minio/minio/cmd.ReleaseTag=DEVELOPMENT.${minio_time//:/-}"
      PEER_LDFLAGS+=" -X github.com/minio/minio/cmd.CommitID=$minio_commit"
      PEER_LDFLAGS+=" -X github.com/minio/minio/cmd.ShortCommitID=$minio_commit"
      build_peer "minio" "$recipes/minio" github.com/minio/minio "minio=github.com/minio/minio" minio_version
      unset PEER_LDFLAGS
      ;;
    fake-gcs-server)
      build_peer "fake-gcs-server" "$recipes/fake-gcs-server" github.com/fsouza/fake-gcs-server \
        "fake-gcs-server=github.com/fsouza/fake-gcs-server" fake_gcs_server_version
      ;;
    helm)
      # helm's release build stamps its version with -X (its Makefile); without it `helm version` says +unreleased.
      PEER_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$(required_version "$recipes/helm" helm.sh/helm/v3)"
      build_peer "helm" "$recipes/helm" helm.sh/helm/v3 "helm=helm.sh/helm/v3/cmd/helm" helm_version
      unset PEER_LDFLAGS
      ;;
    talos-backup)
      if [ ! -f "$recipes/talos-backup/go.mod" ] || [ ! -f "$recipes/talos-backup/go.sum" ]; then
        echo "install-peers: talos-backup: no recipe (scripts/peers/talos-backup/go.mod and go.sum): not built; see scripts/peers/README.md" >&2
        exit 1
      fi
      build_peer "talos-backup" "$recipes/talos-backup" github.com/siderolabs/talos-backup \
        "talos-backup=github.com/siderolabs/talos-backup/cmd/talos-backup" talos_backup_version
      ;;
    kube-apiserver)
      # The API server the kubeconfig save (issue 27) and the operator's real-API tests run against. Its version
      # is stamped by Kubernetes' release tooling (hack/lib/version.sh) into component-base and client-go; without
      # it `kube-apiserver --version` says v0.0.0-master. Stamp the pinned release, dated by the module's time.
      kas_recipe="$recipes/kube-apiserver-1.35.4"
      kas_version=$(required_version "$kas_recipe" k8s.io/kubernetes)
      kas_time=$(cd "$kas_recipe" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
      kas_minor=${kas_version#v*.}
      kas_minor=${kas_minor%%.*}
      kas_major=${kas_version#v}
      kas_major=${kas_major%%.*}
      PEER_LDFLAGS=""
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        PEER_LDFLAGS+=" -X $pkg.gitVersion=$kas_version -X $pkg.gitMajor=$kas_major -X $pkg.gitMinor=$kas_minor"
        # The module proxy does not tell the release's commit: leave it empty rather than a placeholder.
        PEER_LDFLAGS+=" -X $pkg.gitCommit= -X $pkg.buildDate=$kas_time"
      done
      PEER_LDFLAGS="-s -w$PEER_LDFLAGS"
      build_peer "kube-apiserver" "$kas_recipe" k8s.io/kubernetes \
        "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver" kube_apiserver_version
      unset PEER_LDFLAGS
      ;;
    *)
      echo "install-peers: unknown peer '$peer' (known: etcd-3.6 etcd-3.5 minio fake-gcs-server helm talos-backup kube-apiserver)" >&2
      exit 2
      ;;
  esac
done
