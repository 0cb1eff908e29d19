package dynaccounts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// preAdmitAgents: agent a-back reconnected to THIS replica and still holds
// the dynamic account x (its hello lists it). controlplane.Connect has
// added it to the registry and signalled AgentsChanged, but not yet
// recorded its session (forgetDroppedAccounts, admit): the view sees it,
// the database (ClusterAgents) does not; another dynamic agent b-other is
// recorded.
type preAdmitAgents struct{}

func (preAdmitAgents) ConnectedAgents() []controlplane.AgentInfo {
	return []controlplane.AgentInfo{
		{ID: "a-back", DynamicAccounts: true, Accounts: []string{"x"}},
		{ID: "b-other", DynamicAccounts: true},
	}
}
func (preAdmitAgents) ClusterAgents(context.Context) ([]controlplane.AgentInfo, error) {
	return []controlplane.AgentInfo{{ID: "b-other", DynamicAccounts: true}}, nil
}
func (preAdmitAgents) AgentsChanged() <-chan struct{} { return nil }
func (preAdmitAgents) SendAccountCommand(context.Context, string, *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error) {
	return nil, errors.New("not in this test")
}

// The ORPHANED account its own agent is bringing back is not sent for
// migration to another agent while the database lags the registry by the
// admit (a pass in that window used to move it ORPHANED -> TO_MIGRATE).
func TestOrphanedNotMigratedAwayDuringAdmit(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	if _, err := st.CreateAccount(ctx, store.Account{Name: "x", State: Orphaned, AgentID: "a-back", Dynamic: true,
		Definition: []byte(`{"name":"x","serviceAccount":true}`), KubeconfigRef: "serviceAccount"}); err != nil {
		t.Fatal(err)
	}
	m := New(Config{Enabled: true, ReplicaID: "cp-1", Log: slog.New(slog.DiscardHandler)}, st, preAdmitAgents{},
		NewCredentials(&credentials.Resolver{}))
	var wg sync.WaitGroup
	if err := m.reconcile(ctx, &wg); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	a, err := st.GetAccount(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != Orphaned && a.State != Active {
		t.Errorf("x went %s while its own agent (in the registry, not yet in the database) holds it", a.State)
	}
}
