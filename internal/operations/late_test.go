package operations

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/store"
)

// goneAgents serves account "main" by agent "a1", which disconnects
// before answering every operation.
type goneAgents struct{}

func (goneAgents) ConnectedAgents() []controlplane.AgentInfo {
	return []controlplane.AgentInfo{{ID: "a1", Accounts: []string{"main"}}}
}

func (goneAgents) RouteAccount(account string) (string, bool) { return "a1", account == "main" }

func (goneAgents) SendOperation(context.Context, string, *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	return nil, fmt.Errorf("agent a1: %w before answering", controlplane.ErrAgentGone)
}

func (goneAgents) WaitCached(context.Context, store.ObjectKey, string) error { return nil }

// Results that arrive through HandleResult (resent after the agent
// reconnected) finish the task whose runner waits after the agent's
// disconnection, operation by operation; duplicates and results of
// finished tasks are ignored; without a result the task fails saying the
// agent disconnected.
func TestLateResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	m := New(Config{Wait: 2 * time.Second, ReplicaID: "r1", Log: slog.New(slog.DiscardHandler)}, st, goneAgents{})
	defer m.wg.Wait()
	scale := op{Type: "scaleManifest", Account: "main", Description: json.RawMessage(`{"account": "main"}`)}
	result := func(id string, ok bool, payload, msg string) *kubesvcv1.OperationResult {
		return &kubesvcv1.OperationResult{Id: id, Success: ok, Payload: []byte(payload), Error: msg}
	}
	handle := func(res *kubesvcv1.OperationResult) {
		t.Helper()
		if err := m.HandleResult(ctx, "a1", res); err != nil {
			t.Fatalf("HandleResult(%s): %v", res.GetId(), err)
		}
	}

	// Two operations: the first result is progress, the second finishes.
	if _, err := m.start(ctx, "two", []op{scale, scale}); err != nil {
		t.Fatal(err)
	}
	handle(result("two/0", true, `{"n": 0}`, ""))
	handle(result("two/0", true, `{"n": "duplicate"}`, ""))
	handle(result("two/1", true, `{"n": 1}`, ""))
	row := waitState(t, st, "two", Succeeded)
	var tr taskResult
	if err := json.Unmarshal(row.Result, &tr); err != nil || len(tr.Results) != 2 || string(tr.Results[0]) != `{"n":0}` || string(tr.Results[1]) != `{"n":1}` {
		t.Errorf("results %s (%v)", row.Result, err)
	}
	handle(result("two/1", false, "", "too late")) // finished: ignored
	if row := waitState(t, st, "two", Succeeded); row.ErrorMessage != "" {
		t.Errorf("a late result changed a finished task: %+v", row)
	}

	// A failure finishes the task with the agent's message.
	if _, err := m.start(ctx, "bad", []op{scale}); err != nil {
		t.Fatal(err)
	}
	handle(result("bad/0", false, "", "deployments.apps \"web\" not found"))
	if row := waitState(t, st, "bad", Failed); row.ErrorMessage != `scaleManifest (operation 0, main): deployments.apps "web" not found` {
		t.Errorf("failed task message %q", row.ErrorMessage)
	}

	// Nothing arrives: the task fails when its wait is over.
	if _, err := m.start(ctx, "silent", []op{scale}); err != nil {
		t.Fatal(err)
	}
	row = waitState(t, st, "silent", Failed)
	if want := "agent a1 disconnected before answering and no result arrived within 2s"; !strings.Contains(row.ErrorMessage, want) {
		t.Errorf("silent task message %q, want it to contain %q", row.ErrorMessage, want)
	}

	// Unknown tasks and malformed ids are ignored, not errors.
	handle(result("nobody/0", true, "{}", ""))
	handle(result("no-index", true, "{}", ""))
}
