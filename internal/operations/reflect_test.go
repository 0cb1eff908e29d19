package operations

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/store"
)

// answeringAgents is a TEST DOUBLE of the control plane's agents: agent
// "a1" serves "main" and answers every operation with result; WaitCached
// records what it is asked to wait for and returns once release is
// closed.
type answeringAgents struct {
	result  *kubesvcv1.OperationResult
	release chan struct{}

	mu     sync.Mutex
	waited []string
}

func (*answeringAgents) ConnectedAgents() []controlplane.AgentInfo {
	return []controlplane.AgentInfo{{ID: "a1", Accounts: []string{"main"}}}
}

func (*answeringAgents) RouteAccount(account string) (string, bool) { return "a1", account == "main" }

func (a *answeringAgents) SendOperation(_ context.Context, _ string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	res := &kubesvcv1.OperationResult{Id: op.GetId(), Success: true, Payload: a.result.GetPayload(), Cached: a.result.GetCached()}
	return res, nil
}

func (a *answeringAgents) WaitCached(ctx context.Context, key store.ObjectKey, rv string) error {
	a.mu.Lock()
	a.waited = append(a.waited, key.Account+"|"+key.Group+"|"+key.Kind+"|"+key.Namespace+"|"+key.Name+"@"+rv)
	a.mu.Unlock()
	select {
	case <-a.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *answeringAgents) waits() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.waited...)
}

// The task waits for the cache to reflect exactly the objects the agent's
// result names (even of a kind the store has no stream of yet), and the
// waiting GET /task answers once it did, with the task's result; a result
// that names none (an older agent) is checked against the account's
// streams instead.
func TestTaskWaitsForTheObjectsTheResultNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	payload := []byte(`{"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default", "resourceVersion": "7"}},
		{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default", "resourceVersion": "8"}}]}`)
	agents := &answeringAgents{release: make(chan struct{}), result: &kubesvcv1.OperationResult{Payload: payload,
		Cached: &kubesvcv1.CachedObjects{Objects: []*kubesvcv1.ObjectRef{{Kind: "ConfigMap", Namespace: "default", Name: "x", ResourceVersion: "7"}}}}}
	m := New(Config{ReplicaID: "r1", Log: slog.New(slog.DiscardHandler)}, st, agents)
	defer m.wg.Wait()
	mux := http.NewServeMux()
	m.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	getTask := func(id, waitMs string) (state string, results int) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/task/" + id + "?waitMs=" + waitMs)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tk struct {
			State         string
			ResultObjects []json.RawMessage
		}
		if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /task/%s: %d %v", id, resp.StatusCode, err)
		}
		return tk.State, len(tk.ResultObjects)
	}
	deploy := op{Type: "deployManifest", Account: "main", Description: json.RawMessage(`{"account": "main"}`)}

	if _, err := m.start(ctx, "named", []op{deploy}); err != nil {
		t.Fatal(err)
	}
	if state, _ := getTask("named", "200"); state != Running {
		t.Errorf("before the cache reflected the object: %s, want %s", state, Running)
	}
	close(agents.release)
	if state, n := getTask("named", "10000"); state != Succeeded || n != 1 {
		t.Errorf("after the cache reflected it: %s with %d results, want %s with 1", state, n, Succeeded)
	}
	if got := agents.waits(); len(got) != 1 || got[0] != "main||ConfigMap|default|x@7" {
		t.Errorf("waited for %v, want exactly [main||ConfigMap|default|x@7]", got)
	}

	// No cached field: the store has no stream of either kind, so nothing
	// is waited for.
	agents.result.Cached = nil
	if _, err := m.start(ctx, "unnamed", []op{deploy}); err != nil {
		t.Fatal(err)
	}
	if state, _ := getTask("unnamed", "10000"); state != Succeeded {
		t.Errorf("task without cached objects: %s", state)
	}
	if got := agents.waits(); len(got) != 1 {
		t.Errorf("waited for %v, want nothing more", got)
	}
}
