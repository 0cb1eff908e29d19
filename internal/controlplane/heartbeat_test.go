package controlplane

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testlog"
)

// startReplica runs a replica of the given heartbeat period on st until
// the test ends; its log goes to the returned buffer.
func startReplica(t *testing.T, st store.Store, id string, period time.Duration) *testlog.Buffer {
	t.Helper()
	logs := &testlog.Buffer{}
	runOn(t, Config{ID: id, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", HeartbeatPeriod: period,
		Log: slog.New(slog.NewTextHandler(logs, nil))}, st)
	return logs
}

// Two replicas of different heartbeat periods (kubesvc.heartbeat.period,
// e.g. during a rolling change of it) live side by side: the one of the
// shorter period does not declare the other dead between two of its
// heartbeats, since each is judged by the timeout it recorded.
func TestReplicasOfDifferentHeartbeatPeriods(t *testing.T) {
	st := storetest.SQLite(t)
	fast := startReplica(t, st, "fast", 200*time.Millisecond) // timeout 600ms
	slow := startReplica(t, st, "slow", 2*time.Second)        // timeout 6s
	// Long enough for slow to be silent for fast's timeout three times.
	time.Sleep(5 * time.Second)
	reps, err := st.Replicas(context.Background())
	if err != nil || len(reps) != 2 || reps[1].ID != "slow" || reps[1].Timeout != 6*time.Second {
		t.Errorf("replicas %+v (%v), want fast and slow, slow with its timeout of 6s", reps, err)
	}
	if l := fast.String(); strings.Contains(l, "replicas silent for the replica timeout removed") {
		t.Errorf("fast reaped a live replica of a longer period:\n%s", l)
	}
	if l := slow.String(); strings.Contains(l, "peers declared this replica dead") {
		t.Errorf("slow was declared dead by its peer while alive:\n%s", l)
	}
}
