# The two commands of the README: `make run` and `make test`.
# Everything else here is a building block of those two.

.PHONY: run test bench k8s-binaries check build

# Builds (once, cached outside the repo) the Kubernetes binaries, then runs
# the local environment until Ctrl-C.
run: k8s-binaries
	go build -o bin/kubesvc-local ./cmd/kubesvc-local
	bin/kubesvc-local

# The whole test suite: binaries, gofmt, go vet, go test, leak check.
test:
	scripts/test.sh

# Benchmarks with their in-run baselines (see docs/benchmarks.md).
bench: k8s-binaries
	go run ./bench/propagation $(BENCHFLAGS)
	go run ./bench/dynaccounts $(DYNBENCHFLAGS)
	go run ./bench/operations $(OPSBENCHFLAGS)
	go run ./bench/proxy $(PROXYBENCHFLAGS)
	go test -run XXX -bench ConcurrentApply -benchtime 40000x ./internal/store
	eval "$$(scripts/test-dbs.sh)" && go run ./bench/failover $(FAILOVERBENCHFLAGS)

k8s-binaries:
	@scripts/k8s-binaries.sh >/dev/null

check:
	scripts/test.sh --check-only

build:
	go build -o bin/ ./cmd/...
