package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// An account command for an agent that the database places on a replica
// this one's cluster view does not know yet (a replica that just started:
// the view is refreshed every AssignInterval) is forwarded there, as
// ClusterAgents (which the dynamic-accounts reconciler acts on) already
// lists that agent. It used to fail with "replica ... is unknown": an
// activation turned FAILED, and a deletion counted it as done although the
// agent still served the account.
func TestCommandToAgentOfReplicaNotYetInView(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := protojson.Marshal(&kubesvcv1.AccountCommandResult{Id: "c1"})
		_ = json.NewEncoder(w).Encode(forwardMessage{Command: string(b)})
	}))
	t.Cleanup(peer.Close)
	s, err := New(Config{ID: "cp-1", Log: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	// cp-2 started, heartbeat recorded, an agent connected to it: all in
	// the database, none yet in cp-1's view.
	if _, err := st.HeartbeatReplica(ctx, store.Replica{ID: "cp-2", BaseURL: peer.URL, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutAgentSession(ctx, store.AgentSession{AgentID: "a1", SessionID: "a1-1", ReplicaID: "cp-2",
		DynamicAccounts: true, ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	agents, err := s.ClusterAgents(ctx)
	if err != nil || len(agents) != 1 {
		t.Fatalf("ClusterAgents: %v %v", agents, err)
	}
	res, err := s.SendAccountCommand(ctx, "a1", &kubesvcv1.AccountCommand{Id: "c1"})
	if err != nil {
		t.Fatalf("SendAccountCommand to an agent ClusterAgents lists: %v", err)
	}
	if res.GetId() != "c1" {
		t.Errorf("result %v", res)
	}
}
