package dynaccounts

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testlog"
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
	st := storetest.SQLite(t)
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

// A transition to FAILED is logged at WARN (it needs an operator once the
// retries are spent); the others at INFO.
func TestFailedTransitionIsAWarning(t *testing.T) {
	t.Parallel()
	st := storetest.SQLite(t)
	var logged testlog.Buffer
	mgr := New(Config{Enabled: true, ReplicaID: "cp-1", Log: slog.New(slog.NewTextHandler(&logged, nil))}, st, staticAgents{},
		NewCredentials(&credentials.Resolver{}))
	mux := http.NewServeMux()
	mgr.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &leakEnv{st: st, mgr: mgr, url: srv.URL}
	if code, msg := e.call(t, "POST", "/armory/accounts", `[{"name": "other", "kubeconfigAgent": "/k"}]`); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, msg)
	}
	if code, msg := e.call(t, "PATCH", "/armory/accounts", `[{"name": "other", "state": "ACTIVE"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH ACTIVE: %d %s", code, msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logged.String(), "to=FAILED") {
		if time.Now().After(deadline) {
			t.Fatalf("no transition to FAILED logged in 30s (the double refuses every command):\n%s", logged.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for l := range strings.SplitSeq(logged.String(), "\n") {
		switch {
		case strings.Contains(l, "to=FAILED") && !strings.Contains(l, "level=WARN"):
			t.Errorf("transition to FAILED not at WARN: %s", l)
		case strings.Contains(l, `msg="dynamic account"`) && !strings.Contains(l, "to=FAILED") && !strings.Contains(l, "level=INFO"):
			t.Errorf("other transition not at INFO: %s", l)
		}
	}
}
