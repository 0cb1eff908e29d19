# Sourced by scripts/helm.sh and scripts/kubectl.sh: one binary built once
# into the cache root shared with scripts/k8s-binaries.sh.
#
#   cached_binary NAME VERSIONED_DIR BUILD_FUNCTION [--path]
#
# prints the binary's path, calling BUILD_FUNCTION OUTPUT_FILE first when
# it is missing (unless --path). Idempotent and safe to run concurrently:
# an flock per directory, the build written to a temporary file and
# renamed. The cache root is $KUBESVC_BIN_CACHE, else
# $XDG_CACHE_HOME/kubesvc, else ~/.cache/kubesvc.
cached_binary() {
  local name=$1 sub=$2 build=$3 mode=${4:-}
  local root=${KUBESVC_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubesvc}
  local dir="$root/$sub" bin="$root/$sub/$name"
  if [[ "$mode" == "--path" || -x "$bin" ]]; then echo "$bin"; return 0; fi
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9
  if [[ -x "$bin" ]]; then echo "$bin"; return 0; fi
  echo "$name: building $sub from the Go module proxy ..." >&2
  local start=$SECONDS tmp="$dir/.$name.tmp.$$"
  trap 'rm -f "'"$tmp"'"' EXIT
  "$build" "$tmp"
  mv -f "$tmp" "$bin"
  echo "$name: built in $((SECONDS - start))s" >&2
  echo "$bin"
}
