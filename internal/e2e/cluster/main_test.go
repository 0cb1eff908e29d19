package cluster

import (
	"fmt"
	"os"
	"testing"

	"github.com/kubesvc/kubesvc/internal/clusterharness"
)

// bin holds the controlplane and agent binaries, built once.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := clusterharness.Available(); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "cluster tests:", err, "(CI must run them)")
			return 1
		}
		fmt.Fprintln(os.Stderr, "cluster tests skipped:", err)
		return 0
	}
	dir, err := os.MkdirTemp("", "kubesvc-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := clusterharness.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin = dir
	return m.Run()
}
