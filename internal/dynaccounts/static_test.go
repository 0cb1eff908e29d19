package dynaccounts

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/store"
)

// staticAgents is a TEST DOUBLE of the control plane: agent trial-agent
// serves static1 from its configuration.
type staticAgents struct{}

func (staticAgents) ConnectedAgents() []controlplane.AgentInfo {
	return []controlplane.AgentInfo{{ID: "trial-agent", DynamicAccounts: true, Accounts: []string{"static1"}}}
}
func (a staticAgents) ClusterAgents(context.Context) ([]controlplane.AgentInfo, error) {
	return a.ConnectedAgents(), nil
}
func (staticAgents) AgentsChanged() <-chan struct{} { return nil }
func (staticAgents) SendAccountCommand(context.Context, string, *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error) {
	return nil, errors.New("not in this test")
}
func (staticAgents) StaticAccounts(context.Context) (map[string][]string, error) {
	return map[string][]string{"static1": {"trial-agent"}}, nil
}

// A dynamic account named like an account a connected agent serves
// statically is refused (409 naming the agent), on both POSTs, and nothing
// of the request is stored.
func TestPostOfAStaticAccountsNameIsRefused(t *testing.T) {
	t.Parallel()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cp.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sealer, err := credentials.NewSealer(bytes.Repeat([]byte{7}, credentials.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	mgr := New(Config{Enabled: true, ReplicaID: "cp-1", Log: slog.New(slog.DiscardHandler)}, st, staticAgents{},
		NewCredentials(&credentials.Resolver{Sealer: sealer}))
	mux := http.NewServeMux()
	mgr.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &leakEnv{st: st, mgr: mgr, url: srv.URL}
	for _, path := range []string{"/armory/accounts", "/armory/accounts/dynamic"} {
		code, msg := e.call(t, "POST", path, `[{"name": "other", "kubeconfigAgent": "/k"}, {"name": "static1", "kubeconfigAgent": "/nonexistent"}]`)
		if code != http.StatusConflict || !strings.Contains(unquote(msg), `[1].name: account "static1" is configured statically in agent trial-agent`) {
			t.Errorf("POST %s: %d %s, want 409 naming the agent serving static1", path, code, msg)
		}
	}
	for _, name := range []string{"other", "static1"} {
		if _, err := st.GetAccount(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account %s stored by a refused POST (%v)", name, err)
		}
	}
	if code, msg := e.call(t, "POST", "/armory/accounts", `[{"name": "other", "kubeconfigAgent": "/k"}]`); code != http.StatusAccepted {
		t.Errorf("POST of another name: %d %s", code, msg)
	}
}
