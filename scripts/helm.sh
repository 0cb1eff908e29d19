#!/usr/bin/env bash
# Builds the helm binary the chart tests use (deploy/helm) from the Go module
# proxy, at the version pinned below, into the same per-version cache root as
# scripts/k8s-binaries.sh, and prints its path.
#
#   scripts/helm.sh          build if missing, print the binary's path
#   scripts/helm.sh --path   print the path only (no build)
#
# Idempotent and safe to run concurrently (scripts/cached-binary.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cached-binary.sh"

HELM_VERSION=v4.3.1

build_helm() { # output file
  local gobin
  gobin=$(mktemp -d)
  # go install pkg@version builds outside any module: the project's go.mod
  # never requires helm.
  CGO_ENABLED=0 GOBIN="$gobin" GOFLAGS=-mod=mod go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  mv -f "$gobin/helm" "$1"
  rm -rf "$gobin"
}

cached_binary helm "helm-$HELM_VERSION" build_helm "${1:-}"
