#!/usr/bin/env bash
# Builds the helm binary the chart tests use (deploy/helm) from the Go module
# proxy, at the version pinned below, into the same per-version cache root as
# scripts/k8s-binaries.sh, and prints its path.
#
#   scripts/helm.sh          build if missing, print the binary's path
#   scripts/helm.sh --path   print the path only (no build)
#
# Idempotent and safe to run concurrently (flock, build to a temporary file,
# rename). The cache root is $KUBESVC_BIN_CACHE, else $XDG_CACHE_HOME/kubesvc,
# else ~/.cache/kubesvc.
set -euo pipefail

HELM_VERSION=v4.3.1

root=${KUBESVC_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubesvc}
dir="$root/helm-$HELM_VERSION"
bin="$dir/helm"

if [[ "${1:-}" == "--path" ]]; then echo "$bin"; exit 0; fi
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi

mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
echo "helm: building helm $HELM_VERSION from the Go module proxy ..." >&2
start=$SECONDS
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# go install pkg@version builds outside any module: the project's go.mod
# never requires helm.
CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-mod=mod go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
mv -f "$tmp/helm" "$bin"
echo "helm: built in $((SECONDS - start))s" >&2
echo "$bin"
