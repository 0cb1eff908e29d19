package controlplane

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kubesvc/kubesvc/internal/store"
)

// A batch keeps what can be stored: a change no backend can store (a name
// longer than 253 bytes, or not ASCII) is left out and counted, instead of
// failing the batch, which the agent would send again for ever.
func TestIngestLeavesOutWhatCannotBeStored(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler), metrics: newMetrics(prometheus.NewRegistry())}
	st := store.StreamKey{Account: "a", Resource: store.Resource{Version: "v1", Resource: "clusterroles", Kind: "ClusterRole", Group: "rbac.authorization.k8s.io"}}
	change := func(name string) store.Change {
		return store.Change{Type: store.Upserted, Stream: st, Object: &store.Object{ObjectKey: store.ObjectKey{Name: name}}}
	}
	kept := s.storable(&session{agentID: "x"}, []store.Change{change("ok-1"), change("rôle"), change(strings.Repeat("n", 300)), change("ok-2")})
	if len(kept) != 2 || kept[0].Object.Name != "ok-1" || kept[1].Object.Name != "ok-2" {
		t.Errorf("kept %d changes, want ok-1 and ok-2", len(kept))
	}
	var m dto.Metric
	if err := s.metrics.droppedChanges.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 2 {
		t.Errorf("dropped changes counted %v, want 2", n)
	}
}
