// Command floor is the two processes of the benchmarks' -floor option (see
// bench/internal/floor): a minimal agent and server with the architecture's
// process split and nothing else, a lower bound and not a product path. The
// benchmarks build and start it; run by hand:
//
//	floor read-server -grpc ADDR -http ADDR
//	floor watch-agent -server ADDR -kubeconfig FILE -namespace NS
//	floor apply-server -grpc ADDR -http ADDR
//	floor apply-agent -server ADDR -kubeconfig FILE
package main

import (
	"fmt"
	"os"

	"github.com/kubesvc/kubesvc/bench/internal/floor"
)

func main() {
	if err := floor.Main(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
