package controlplane

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/accountview"
	"github.com/kubesvc/kubesvc/internal/store"
)

// An account an agent serves from its configuration is shown as that
// static account even when a dynamic account's row has its name (the
// row's state and error named apart, not mixed in), and StaticAccounts
// lists it, with the accounts the store records for other replicas'
// agents.
func TestStaticAccountIsNotMixedWithADynamicRow(t *testing.T) {
	e := newRESTEnv(t)
	ctx := context.Background()
	now := time.Now()
	sess := &session{agentID: "trial-agent", zoneID: "z", accounts: map[string]*accountState{
		"static1": {info: &kubesvcv1.AccountInfo{Name: "static1", ApiHost: "https://static.example", Namespaces: []string{"default"}},
			state: kubesvcv1.AccountStatus_WATCHING, updated: now},
		"dyn1": {info: &kubesvcv1.AccountInfo{Name: "dyn1", Dynamic: true}, state: kubesvcv1.AccountStatus_WATCHING, updated: now},
	}}
	e.s.registry.add(sess)
	if _, err := e.st.CreateAccount(ctx, store.Account{Name: "static1", State: "DELETE_FAILED", Dynamic: true,
		ErrorMessage: `agent trial-agent: account "static1" is configured statically in this agent`,
		Definition:   []byte(`{"name": "static1", "kubeconfigAgent": "/nonexistent"}`)}); err != nil {
		t.Fatal(err)
	}
	code, _, body := e.call(t, "GET", "/agents/kubernetes/accounts/static1", "")
	var a accountview.Account
	if code != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil {
		t.Fatalf("GET: %d %s", code, body)
	}
	if a.Status != "ACTIVE" || a.Dynamic || a.KubeHost != "https://static.example" || a.Definition["kubeconfigAgent"] != nil || a.AgentStates["trial-agent"] != "WATCHING" {
		t.Errorf("the static account mixed with the dynamic row: %s", body)
	}
	if c := a.ConflictingDynamicAccount; c == nil || c.Status != "DELETE_FAILED" || c.ErrorMessage == "" {
		t.Errorf("conflictingDynamicAccount: %+v, want the row's DELETE_FAILED and its error", c)
	}

	// Another replica's agent, as the store records it.
	if _, _, err := e.st.PutAgentSession(ctx, store.AgentSession{AgentID: "far-agent", SessionID: "s1", ReplicaID: "cp-2", ConnectedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetAgentAccounts(ctx, "far-agent", []string{"far", "static1"}); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.StaticAccounts(ctx)
	want := map[string][]string{"static1": {"far-agent", "trial-agent"}, "far": {"far-agent"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("StaticAccounts: %v %v, want %v", got, err, want)
	}
}
