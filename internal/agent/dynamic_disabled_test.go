package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// An agent configured with dynamicAccountsEnabled: false says so in its
// Hello (the control plane then never routes dynamic accounts to it) and
// refuses account commands that reach it anyway, serving nothing.
func TestDynamicAccountsDisabled(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{welcome: &kubesvcv1.Welcome{SessionId: "s1", MaxBatchBytes: 1 << 20}, autoAck: true})
	a, err := New(Config{Target: d.addr, ID: "agent-nodyn", ZoneID: "z", Version: "test", Log: testLogger(t), DisableDynamicAccounts: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.runSession(ctx, d.dial(t))
	}()
	if h := d.hello(t); h.GetDynamicAccountsEnabled() {
		t.Errorf("hello announces dynamic accounts: %v", h)
	}
	results := a.addDynamic(ctx, []*kubesvcv1.DynamicAccount{{Name: "pushed", ServiceAccount: true}})
	if len(results) != 1 || results[0].GetSuccess() || !strings.Contains(results[0].GetError(), "dynamicAccountsEnabled is false") {
		t.Errorf("AddAccounts on a disabled agent: %v", results)
	}
	a.mu.Lock()
	_, served := a.accounts["pushed"]
	a.mu.Unlock()
	if served {
		t.Error("the refused account is served")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runSession did not end within 10s of the cancel")
	}
}
