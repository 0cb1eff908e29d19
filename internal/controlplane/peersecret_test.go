package controlplane

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testlog"
)

// Replicas configured with different peer secrets: the forwarding one's
// error says the secrets differ, and the refusing one warns, once, naming
// the remote address.
func TestPeerSecretsDiffer(t *testing.T) {
	st := storetest.SQLite(t)
	bLogs := &testlog.Buffer{}
	b, err := New(Config{ID: "b", PeerSecret: "secret-of-b", Log: slog.New(slog.NewTextHandler(bLogs, nil))}, st)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(b.routes())
	t.Cleanup(ts.Close)
	a, err := New(Config{ID: "a", PeerSecret: "secret-of-a", Peers: fixedPeers{{ID: "b", BaseURL: ts.URL, Ready: true}},
		Log: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		err = a.post(context.Background(), "b", "/armory/agent/operations?agentId=x", forwardMessage{Operation: "{}"}, nil)
		if err == nil || !strings.Contains(err.Error(), "answered 401") ||
			!strings.Contains(err.Error(), "kubesvc.peerSecretFile differs between replicas?") {
			t.Fatalf("forward with another secret: %v, want a 401 saying the peer secrets differ", err)
		}
	}
	l := bLogs.String()
	if n := strings.Count(l, "level=WARN"); n != 1 || !strings.Contains(l, "with another peer secret") ||
		!strings.Contains(l, "remote=127.0.0.1:") || !strings.Contains(l, "forwardedBy=a") {
		t.Errorf("the refusing replica logged (%d warnings):\n%s\nwant one warning naming the remote address and the secrets differing", n, l)
	}
}
