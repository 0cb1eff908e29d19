package e2e

import (
	"path/filepath"
	"testing"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// Narrowing an account's kinds while it streams removes the kinds it no
// longer wants from the cache and keeps serving the others throughout.
func TestChangedAccountKeepsServingAndDropsUnwantedKinds(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	createConfigMap(t, cs, "default", "kept")
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	wide := account("main", cluster)
	wide.Kinds = []string{"ConfigMap", "Namespace"}
	ag := startAgent(t, cp.grpc, wide)
	present(t, cp, q("account", "main", "kind", "Namespace", "name", "default"), "/default")
	present(t, cp, q("account", "main", "kind", "ConfigMap", "name", "kept"), "default/kept")
	cp.watching(t, "main")

	narrow := wide
	narrow.Kinds = []string{"ConfigMap"}
	if err := ag.SetAccounts([]agent.Account{narrow}); err != nil {
		t.Fatal(err)
	}
	present(t, cp, q("account", "main", "kind", "Namespace"))
	if got := names(cp.list(t, q("account", "main", "kind", "ConfigMap", "name", "kept"))); len(got) != 1 {
		t.Fatalf("ConfigMap kept not served after the change: %v", got)
	}
}

// What changed while an agent was away is reconciled when it returns: an
// account removed from its configuration leaves the cache, and kinds no
// longer wanted by a remaining account are dropped.
func TestAgentRestartReconcilesAccountsAndStreams(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	createConfigMap(t, cs, "default", "kept")
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	both := account("both", cluster)
	both.Kinds = []string{"ConfigMap", "Namespace"}
	gone := account("gone", cluster)
	gone.Kinds = []string{"Namespace"}
	first := startAgent(t, cp.grpc, both, gone)
	present(t, cp, q("account", "gone", "kind", "Namespace", "name", "default"), "/default")
	present(t, cp, q("account", "both", "kind", "Namespace", "name", "default"), "/default")
	cp.watching(t, "both")
	first.stopNow(t)

	// The same agent comes back without "gone" and with fewer kinds.
	narrowed := both
	narrowed.Kinds = []string{"ConfigMap"}
	startAgent(t, cp.grpc, narrowed)
	present(t, cp, q("account", "gone"))
	present(t, cp, q("account", "both", "kind", "Namespace"))
	present(t, cp, q("account", "both", "kind", "ConfigMap", "name", "kept"), "default/kept")
	if code, _, _ := getJSON(cp.http, "/agents/kubernetes/accounts/gone", nil, nil); code != 404 {
		t.Errorf("account gone: %d, want 404", code)
	}
}

// stopNow stops the agent before the test ends.
func (ra *runningAgent) stopNow(t *testing.T) {
	t.Helper()
	ra.cancel()
	if err := <-ra.done; err != nil {
		t.Errorf("agent Run: %v", err)
	}
	ra.done <- nil // for the cleanup registered by startAgent
}
