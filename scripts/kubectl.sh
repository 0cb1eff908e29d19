#!/usr/bin/env bash
# Builds the kubectl the tests drive through the Kubernetes API proxy
# (internal/e2e), from the Kubernetes module pinned in tools/k8s/go.mod,
# into the same cache root as scripts/k8s-binaries.sh, and prints its path.
#
#   scripts/kubectl.sh          build if missing, print the binary's path
#   scripts/kubectl.sh --path   print the path only (no build)
#
# Idempotent and safe to run concurrently (scripts/cached-binary.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cached-binary.sh"

tools="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/k8s"
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$tools/go.mod")

build_kubectl() { # output file
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  (cd "$tools" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$1" -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$minor \
    -X k8s.io/component-base/version.gitTreeState=clean \
    -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
    k8s.io/kubernetes/cmd/kubectl)
}

cached_binary kubectl "kubectl-$K8S_VERSION" build_kubectl "${1:-}"
