#!/usr/bin/env bash
# Builds the kubectl the tests drive through the Kubernetes API proxy
# (internal/e2e), from the Kubernetes module pinned in tools/k8s/go.mod,
# into the same cache root as scripts/k8s-binaries.sh, and prints its path.
#
#   scripts/kubectl.sh          build if missing, print the binary's path
#   scripts/kubectl.sh --path   print the path only (no build)
#
# Idempotent and safe to run concurrently (flock, build to a temporary file,
# rename). The cache root is $KUBESVC_BIN_CACHE, else $XDG_CACHE_HOME/kubesvc,
# else ~/.cache/kubesvc.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/k8s"
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$tools/go.mod")

root=${KUBESVC_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubesvc}
dir="$root/kubectl-$K8S_VERSION"
bin="$dir/kubectl"

if [[ "${1:-}" == "--path" ]]; then echo "$bin"; exit 0; fi
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi

mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
echo "kubectl: building kubectl $K8S_VERSION from the Go module proxy ..." >&2
start=$SECONDS
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
tmp="$dir/.kubectl.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cd "$tools"
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$tmp" -ldflags "-s -w \
 -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
  k8s.io/kubernetes/cmd/kubectl
mv -f "$tmp" "$bin"
echo "kubectl: built in $((SECONDS - start))s" >&2
echo "$bin"
