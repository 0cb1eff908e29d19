#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the tests and the local run use
# (etcd, kube-apiserver, kube-controller-manager, kwok) from the Go module proxy,
# at the versions pinned in tools/k8s/go.mod and below, into a per-version cache
# directory outside the repository.
#
#   scripts/k8s-binaries.sh          build if missing, print the directory
#   scripts/k8s-binaries.sh --dir    print the directory only (no build)
#
# Idempotent: a second run finds the stamp file and exits at once.
# Safe to run concurrently: builds hold an exclusive flock on the cache
# directory, and each binary is built into a temporary file and renamed.
# The cache root is $KUBESVC_BIN_CACHE, else $XDG_CACHE_HOME/kubesvc, else
# ~/.cache/kubesvc. internal/testenv finds the binaries in the same place.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/k8s"

K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$tools/go.mod")
ETCD_VERSION=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$tools/go.mod")
KWOK_VERSION=v0.8.0 # keep in sync with internal/testenv/binaries.go

root=${KUBESVC_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubesvc}
dir="$root/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"

if [[ "${1:-}" == "--dir" ]]; then echo "$dir"; exit 0; fi

stamp="$dir/.complete"
if [[ -f "$stamp" ]]; then echo "$dir"; exit 0; fi

mkdir -p "$dir"
exec 9>"$dir.lock"
echo "k8s-binaries: waiting for the build lock $dir.lock" >&2
flock 9
if [[ -f "$stamp" ]]; then echo "$dir"; exit 0; fi

build() { # name, package, ldflags
  local name=$1 pkg=$2 ld=$3
  if [[ -x "$dir/$name" ]]; then return 0; fi
  local start=$SECONDS tmp="$dir/.$name.tmp.$$"
  echo "k8s-binaries: building $name ..." >&2
  go build -trimpath -ldflags "$ld" -o "$tmp" "$pkg"
  mv -f "$tmp" "$dir/$name"
  echo "k8s-binaries: built $name in $((SECONDS - start))s" >&2
}

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

cd "$tools"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
build etcd go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
if [[ ! -x "$dir/kwok" ]]; then
  echo "k8s-binaries: building kwok ..." >&2
  gobin=$(mktemp -d "$dir/.kwok.XXXXXX")
  (cd "$dir" && GOFLAGS= GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  mv -f "$gobin/kwok" "$dir/kwok"; rm -rf "$gobin"
fi

printf 'kubernetes %s\netcd %s\nkwok %s\n' "$K8S_VERSION" "$ETCD_VERSION" "$KWOK_VERSION" >"$stamp"
echo "$dir"
