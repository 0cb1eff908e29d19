#!/usr/bin/env bash
# The whole test suite (the README's test command runs this through
# `make test`; .ci/run runs `make test`):
#   1. install missing system packages (scripts/deps.sh) and build the
#      Kubernetes binaries, helm and kubectl if they are missing (cached),
#   2. gofmt, go vet, and the generated protobuf code up to date,
#   3. start MariaDB and PostgreSQL for the store's backends
#      (scripts/test-dbs.sh installs them if missing; skipped when
#      KUBESVC_TEST_MYSQL_DSN and KUBESVC_TEST_POSTGRES_DSN are both set,
#      e.g. to servers of your own), then go test ./... ,
#   4. check that no etcd / kube-apiserver / kube-controller-manager started
#      by the suite is still running.
# --check-only stops after step 2.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/deps.sh
bindir=$(scripts/k8s-binaries.sh)
scripts/helm.sh >/dev/null
scripts/kubectl.sh >/dev/null

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './tools/*') | grep -v '\.pb\.go$' || true)
if [[ -n "$unformatted" ]]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== generated code"
scripts/gen-proto.sh --check
[[ "${1:-}" == "--check-only" ]] && exit 0

if [[ -z "${KUBESVC_TEST_MYSQL_DSN:-}" || -z "${KUBESVC_TEST_POSTGRES_DSN:-}" ]]; then
  echo "== database servers"
  dbenv=$(scripts/test-dbs.sh)
  eval "$dbenv" # export KUBESVC_TEST_MYSQL_DSN=... KUBESVC_TEST_POSTGRES_DSN=...
fi

# Every process the suite starts inherits this marker, so the leak check
# below finds exactly the suite's processes and not, say, a `make run`. The
# database servers, started above without it and from outside $bindir, are
# not the suite's: they keep running for the next run.
export KUBESVC_TEST_RUN="$$-$RANDOM-$(date +%s)"
echo "== go test"
status=0
# -p 1: one package at a time. Their real clusters and processes would
# otherwise share the 2 cores of a CI machine, starving controllers the
# tests wait on; tests inside a package still run in parallel.
# -race: every test runs under the race detector (about 2 minutes more
# on the reference machine; it needs cgo, hence gcc in scripts/deps.sh).
go test -race -count=1 -p 1 -timeout 30m ${GOTESTFLAGS:-} ./... || status=$?

echo "== leftover processes"
leaked=0
for env in /proc/[0-9]*/environ; do
  pid=${env#/proc/}; pid=${pid%/environ}
  grep -qsz "^KUBESVC_TEST_RUN=$KUBESVC_TEST_RUN\$" "$env" 2>/dev/null || continue
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  case "$exe" in
    "$bindir"/*) echo "leaked: pid $pid $exe"; leaked=1; kill -9 "$pid" 2>/dev/null || true ;;
  esac
done
if [[ $leaked -ne 0 ]]; then echo "FAIL: the suite left Kubernetes processes running"; exit 1; fi
echo "none"

echo "== leftover network namespaces (cluster tests)"
# internal/clusterharness names its bridges and namespaces ksb<pid>-...;
# one whose test process is gone was leaked.
if command -v ip >/dev/null; then
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ksb' || true); do
    pid=${ns#ksb}; pid=${pid%%-*}
    [[ -d /proc/$pid ]] && continue
    echo "leaked: network namespace $ns"; leaked=1; ip netns del "$ns" || true
  done
  for br in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | grep '^ksb' || true); do
    pid=${br#ksb}; pid=${pid%%-*}
    [[ -d /proc/$pid ]] && continue
    echo "leaked: bridge $br"; leaked=1; ip link del "$br" || true
  done
fi
if [[ $leaked -ne 0 ]]; then echo "FAIL: the suite left network namespaces behind"; exit 1; fi
echo "none"
exit $status
