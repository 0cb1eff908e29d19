package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// An account no agent serves leaves the cache after
// accountCleanupFrequencySeconds; while served, it stays.
func TestUnservedAccountLeavesTheCache(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	createConfigMap(t, cs, "default", "kept-while-served")
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db"), accountCleanup: 2 * time.Second})
	ag := startAgent(t, cp.grpc, account("main", cluster))
	query := q("account", "main", "kind", "ConfigMap", "namespace", "default", "name", "kept-while-served")
	present(t, cp, query, "default/kept-while-served")
	// Served: several cleanup periods go by and nothing leaves.
	time.Sleep(5 * time.Second)
	present(t, cp, query, "default/kept-while-served")

	ag.cancel()
	if err := <-ag.done; err != nil {
		t.Fatal(err)
	}
	ag.done <- nil // for the agent's cleanup
	present(t, cp, query)
}
