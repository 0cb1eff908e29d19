package operations

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/store"
)

// hopAgents is a TEST DOUBLE of the control plane's agents: agent "a1"
// serves account "a", agent "a2" account "b"; an operation on an account
// with a channel in hold waits until it is closed, then succeeds.
type hopAgents struct{ hold map[string]chan struct{} }

func (hopAgents) ConnectedAgents() []controlplane.AgentInfo {
	return []controlplane.AgentInfo{{ID: "a1", Accounts: []string{"a"}}, {ID: "a2", Accounts: []string{"b"}}}
}

func (hopAgents) RouteAccount(account string) (string, bool) {
	switch account {
	case "a":
		return "a1", true
	case "b":
		return "a2", true
	}
	return "", false
}

func (h hopAgents) SendOperation(ctx context.Context, _ string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	if c := h.hold[op.GetAccount()]; c != nil {
		select {
		case <-c:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &kubesvcv1.OperationResult{Id: op.GetId(), Success: true, Payload: []byte(`{}`)}, nil
}

func (hopAgents) WaitCached(context.Context, store.ObjectKey, string) error { return nil }

// While a task runs, its history row names the agent of the operation
// running now: the first one's once it has run for markSentAfter, a later
// one's from when it is sent.
func TestHistoryNamesTheAgentOfTheRunningOperation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	holdA, holdB := make(chan struct{}), make(chan struct{})
	m := New(Config{Wait: 20 * time.Second, ReplicaID: "r1", Log: slog.New(slog.DiscardHandler)}, st,
		hopAgents{hold: map[string]chan struct{}{"a": holdA, "b": holdB}})
	defer m.wg.Wait()
	scale := func(account string) op {
		return op{Type: "scaleManifest", Account: account, Description: json.RawMessage(`{"account": "` + account + `"}`)}
	}
	if _, err := m.start(ctx, "t", []op{scale("a"), scale("b")}); err != nil {
		t.Fatal(err)
	}
	running := func(agent string) func(store.Operation) bool {
		return func(r store.Operation) bool { return r.State == Running && r.AgentID == agent && !r.SentAt.IsZero() }
	}
	first := waitRow(t, st, "t", "RUNNING on a1", running("a1"))
	close(holdA)
	second := waitRow(t, st, "t", "RUNNING on a2", running("a2"))
	if !second.SentAt.Equal(first.SentAt) {
		t.Errorf("sent at %v, then %v: the task's first send should stay", first.SentAt, second.SentAt)
	}
	var tr taskResult
	if err := json.Unmarshal(second.Result, &tr); err != nil || len(tr.Results) != 1 {
		t.Errorf("progress while the second operation runs: %s (%v), want the first's result", second.Result, err)
	}
	close(holdB)
	if row := waitState(t, st, "t", Succeeded); row.AgentID != "a2" {
		t.Errorf("finished task names agent %q, want a2 (the last operation's)", row.AgentID)
	}
}

// Once Run has stopped, a task is refused (503 at the REST edge) and
// nothing is recorded: no task starts that no one would wait for.
func TestStoppedManagerStartsNoTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	m := New(Config{Wait: time.Second, ReplicaID: "r1", Log: slog.New(slog.DiscardHandler)}, st, hopAgents{})
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	scale := op{Type: "scaleManifest", Account: "a", Description: json.RawMessage(`{"account": "a"}`)}
	if _, err := m.start(ctx, "late", []op{scale}); !errors.Is(err, errStopping) {
		t.Errorf("start after Run stopped: %v, want errStopping", err)
	}
	if _, err := st.GetOperation(ctx, "late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused task was recorded: %v", err)
	}
}
