#!/usr/bin/env bash
# Regenerates the Go code of the wire protocol (api/**/*.proto) with protoc
# (Debian's protobuf-compiler) and the plugins pinned as tools in go.mod.
#
#   scripts/gen-proto.sh           regenerate in place
#   scripts/gen-proto.sh --check   fail if the committed code is stale
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
command -v protoc >/dev/null || { echo "gen-proto: protoc missing: run scripts/deps.sh (installs protobuf-compiler)"; exit 1; }

plugins=$(mktemp -d); out=$(mktemp -d)
trap 'rm -rf "$plugins" "$out"' EXIT
go build -o "$plugins/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

protos=$(find api -name '*.proto' | sort)
protoc -I . \
  --plugin=protoc-gen-go="$plugins/protoc-gen-go" --plugin=protoc-gen-go-grpc="$plugins/protoc-gen-go-grpc" \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  $protos

if [[ "${1:-}" == "--check" ]]; then
  stale=0
  for f in $(cd "$out" && find . -name '*.go' | sort); do
    if ! cmp -s "$out/$f" "$f"; then echo "gen-proto: $f is stale"; stale=1; fi
  done
  for f in $(find api -name '*.pb.go' | sort); do
    [[ -f "$out/$f" ]] || { echo "gen-proto: $f has no .proto any more"; stale=1; }
  done
  if ((stale)); then echo "gen-proto: run scripts/gen-proto.sh and commit the result"; exit 1; fi
  echo "gen-proto: generated code is up to date"
  exit 0
fi
(cd "$out" && find . -name '*.go') | while read -r f; do mkdir -p "$(dirname "$f")"; cp "$out/$f" "$f"; done
echo "gen-proto: regenerated $(echo "$protos" | wc -w) file(s)"
