package dynaccounts

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// A POST that repeats an existing dynamic account (ACTIVE, served by an
// agent of another replica) answers as documented: 409 with the existing
// item, the new ones stored. StaticAccounts knows a remote agent only by
// the names it serves, dynamic ones too: the whole POST used to be refused
// as "configured statically".
func TestRepostOfRemoteDynamicAccountIsNotStatic(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	cp, err := controlplane.New(controlplane.Config{ID: "cp-1", Log: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	// dyn1: a dynamic account, ACTIVE on far-agent, connected to cp-2.
	if _, err := st.CreateAccount(ctx, store.Account{Name: "dyn1", State: Active, AgentID: "far-agent", Dynamic: true,
		Definition: []byte(`{"name":"dyn1","kubeconfigAgent":"/k"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutAgentSession(ctx, store.AgentSession{AgentID: "far-agent", SessionID: "s1", ReplicaID: "cp-2",
		DynamicAccounts: true, ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAgentAccounts(ctx, "far-agent", []string{"dyn1"}); err != nil {
		t.Fatal(err)
	}
	e := serveManager(t, st, cp)
	code, msg := e.call(t, "POST", "/armory/accounts/dynamic",
		`[{"name": "dyn1", "kubeconfigAgent": "/k"}, {"name": "new1", "kubeconfigAgent": "/k"}]`)
	if code != http.StatusConflict {
		t.Errorf("POST: %d %s, want 409 listing dyn1", code, msg)
	}
	if _, err := st.GetAccount(ctx, "new1"); errors.Is(err, store.ErrNotFound) {
		t.Errorf("new1 not stored; the POST answered %d %s", code, msg)
	}
}
