package dynaccounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// unreachedAgents is a TEST DOUBLE of the control plane: agent a1, recorded
// as connected, holds account x; commands to it fail with ErrAgentGone
// (its replica not reachable from here) until reachable is set.
type unreachedAgents struct{ reachable atomic.Bool }

func (u *unreachedAgents) ConnectedAgents() []controlplane.AgentInfo {
	return []controlplane.AgentInfo{{ID: "a1", DynamicAccounts: true, Accounts: []string{"x"}}}
}
func (u *unreachedAgents) ClusterAgents(context.Context) ([]controlplane.AgentInfo, error) {
	return u.ConnectedAgents(), nil
}
func (u *unreachedAgents) AgentsChanged() <-chan struct{} { return nil }
func (u *unreachedAgents) SendAccountCommand(_ context.Context, _ string, cmd *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error) {
	if !u.reachable.Load() {
		return nil, fmt.Errorf("control-plane replica cp-2 is unknown: %w", controlplane.ErrAgentGone)
	}
	res := &kubesvcv1.AccountCommandResult{Id: cmd.GetId()}
	for _, n := range cmd.GetDelete().GetNames() {
		res.Results = append(res.Results, &kubesvcv1.AccountResult{Name: n, Success: true})
	}
	return res, nil
}

// A deletion whose agent cannot be reached while it is still recorded as
// connected is not taken for done (the agent would go on serving the
// account): the row stays DELETING, saying why, and goes once the agent
// answers.
func TestDeleteWaitsForAnUnreachedConnectedAgent(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	if _, err := st.CreateAccount(ctx, store.Account{Name: "x", State: Deleting, AgentID: "a1", Dynamic: true,
		Definition: []byte(`{"name":"x","serviceAccount":true}`), KubeconfigRef: "serviceAccount"}); err != nil {
		t.Fatal(err)
	}
	agents := &unreachedAgents{}
	m := New(Config{Enabled: true, ReplicaID: "cp-1", Log: slog.New(slog.DiscardHandler)}, st, agents, NewCredentials(&credentials.Resolver{}))
	pass := func() {
		t.Helper()
		var wg sync.WaitGroup
		if err := m.reconcile(ctx, &wg); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
	pass()
	a, err := st.GetAccount(ctx, "x")
	if err != nil {
		t.Fatalf("x removed although its agent, still connected, was not reached: %v", err)
	}
	if a.State != Deleting || a.Owner != "" || !strings.Contains(a.ErrorMessage, "still connected") {
		t.Errorf("x %s owner %q error %q, want DELETING, unclaimed, saying the agent is still connected", a.State, a.Owner, a.ErrorMessage)
	}
	agents.reachable.Store(true)
	pass()
	if _, err := st.GetAccount(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("x still there once its agent answered: %v", err)
	}
}
