package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// Replicas heartbeat, are listed, reaped when silent (with their sessions
// and assignments) and removed.
func testClusterReplicas(t *testing.T, s store.Store) {
	ctx := context.Background()
	existed, err := s.HeartbeatReplica(ctx, store.Replica{ID: "r1", BaseURL: "http://10.0.0.1:7002"})
	if err != nil || existed {
		t.Fatalf("first heartbeat: existed=%v err=%v, want false, nil", existed, err)
	}
	if existed, err = s.HeartbeatReplica(ctx, store.Replica{ID: "r1", BaseURL: "http://10.0.0.9:7002"}); err != nil || !existed {
		t.Fatalf("second heartbeat: existed=%v err=%v, want true, nil", existed, err)
	}
	if _, err := s.HeartbeatReplica(ctx, store.Replica{ID: "r2", BaseURL: "http://10.0.0.2:7002"}); err != nil {
		t.Fatal(err)
	}
	reps, err := s.Replicas(ctx)
	if err != nil || len(reps) != 2 || reps[0].ID != "r1" || reps[0].BaseURL != "http://10.0.0.9:7002" || reps[1].ID != "r2" {
		t.Fatalf("Replicas = %+v, %v", reps, err)
	}
	if reps[0].HeartbeatAt.IsZero() || reps[0].StartedAt.After(reps[0].HeartbeatAt) {
		t.Errorf("replica r1 times: %+v", reps[0])
	}
	// r2's agent holds an account; reaping r2 voids both.
	sess := store.AgentSession{AgentID: "a2", SessionID: "a2-1", ReplicaID: "r2", ConnectedAt: time.Now()}
	if _, _, err := s.PutAgentSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimAssignments(ctx, sess, []string{"acc"}); err != nil || !slices.Equal(got, []string{"acc"}) {
		t.Fatalf("claim = %v, %v", got, err)
	}
	if reaped, err := s.ReapReplicas(ctx, time.Now(), time.Hour); err != nil || len(reaped) != 0 {
		t.Fatalf("reap of nobody = %v, %v", reaped, err)
	}
	reaped, err := s.ReapReplicas(ctx, time.Now().Add(time.Hour), time.Minute)
	slices.Sort(reaped)
	if err != nil || !slices.Equal(reaped, []string{"r1", "r2"}) {
		t.Fatalf("reap = %v, %v; want r1 r2", reaped, err)
	}
	if got := sessions(t, s); len(got) != 0 {
		t.Errorf("sessions after reaping their replica: %+v", got)
	}
	if got := assignments(t, s); len(got) != 0 {
		t.Errorf("assignments after reaping their replica: %+v", got)
	}
	// A reaped replica finds out at its next heartbeat.
	if existed, err := s.HeartbeatReplica(ctx, store.Replica{ID: "r1"}); err != nil || existed {
		t.Errorf("heartbeat after reaping: existed=%v err=%v", existed, err)
	}
	if err := s.RemoveReplica(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if reps, _ := s.Replicas(ctx); len(reps) != 0 {
		t.Errorf("replicas after removal: %+v", reps)
	}
}

// Each replica records its own timeout with its heartbeat, and is reaped
// by it, whatever the reaper's own: a replica of a longer heartbeat period
// is not declared dead by one of a shorter one. Rows without a timeout
// (older binaries) are judged by the reaper's.
func testClusterReplicaTimeouts(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, r := range []store.Replica{
		{ID: "fast", BaseURL: "http://fast", Timeout: 30 * time.Second},
		{ID: "slow", BaseURL: "http://slow", Timeout: 3 * time.Minute},
		{ID: "old", BaseURL: "http://old"}, // no timeout recorded
	} {
		if _, err := s.HeartbeatReplica(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	reps, err := s.Replicas(ctx)
	if err != nil || len(reps) != 3 {
		t.Fatalf("Replicas = %+v, %v", reps, err)
	}
	for _, r := range reps {
		want := map[string]time.Duration{"fast": 30 * time.Second, "slow": 3 * time.Minute, "old": 0}[r.ID]
		if r.Timeout != want {
			t.Errorf("replica %s: timeout %s, want %s", r.ID, r.Timeout, want)
		}
	}
	reap := func(after, timeout time.Duration) []string {
		t.Helper()
		reaped, err := s.ReapReplicas(ctx, time.Now().Add(after), timeout)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(reaped)
		return reaped
	}
	// A minute of silence: past fast's timeout and the reaper's own (10s,
	// for old), not past slow's.
	if got := reap(time.Minute, 10*time.Second); !slices.Equal(got, []string{"fast", "old"}) {
		t.Errorf("reaped after a minute = %v, want fast old (slow's timeout is 3m)", got)
	}
	// A heartbeat changes the recorded timeout (a restart with another
	// period); none recorded falls back to the reaper's.
	if _, err := s.HeartbeatReplica(ctx, store.Replica{ID: "slow", BaseURL: "http://slow", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeartbeatReplica(ctx, store.Replica{ID: "old", BaseURL: "http://old"}); err != nil {
		t.Fatal(err)
	}
	if got := reap(30*time.Second, time.Hour); !slices.Equal(got, []string{"slow"}) {
		t.Errorf("reaped after 30s = %v, want slow (its timeout is now 1s; old's the reaper's hour)", got)
	}
	if got := reap(2*time.Hour, time.Hour); !slices.Equal(got, []string{"old"}) {
		t.Errorf("reaped after 2h = %v, want old", got)
	}
}

// Claims: free accounts are taken, a live session's are not, an ended
// session's are, and a new session of the same agent inherits them.
func testClusterAssignments(t *testing.T, s store.Store) {
	ctx := context.Background()
	a1 := store.AgentSession{AgentID: "a1", SessionID: "a1-1", ReplicaID: "r1", ZoneID: "z", Version: "1.2.3", DynamicAccounts: true, ConnectedAt: time.Now()}
	a2 := store.AgentSession{AgentID: "a2", SessionID: "a2-1", ReplicaID: "r2", ConnectedAt: time.Now()}
	for _, sess := range []store.AgentSession{a1, a2} {
		if _, _, err := s.PutAgentSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if got := sessions(t, s); len(got) != 2 || got[0].ZoneID != "z" || got[0].Version != "1.2.3" || !got[0].DynamicAccounts ||
		got[1].ReplicaID != "r2" || got[1].Version != "" {
		t.Fatalf("sessions = %+v", got)
	}
	claim := func(sess store.AgentSession, accounts ...string) []string {
		t.Helper()
		got, err := s.ClaimAssignments(ctx, sess, accounts)
		if err != nil {
			t.Fatalf("claim %v for %s: %v", accounts, sess.SessionID, err)
		}
		return got
	}
	if got := claim(a1, "x", "y"); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("a1 claimed %v, want x y", got)
	}
	if got := claim(a2, "y", "z"); !slices.Equal(got, []string{"z"}) {
		t.Fatalf("a2 claimed %v, want z (y is a1's)", got)
	}
	if got := claim(a1, "x", "y", "z"); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("a1 re-claim = %v, want x y", got)
	}
	// a1 reconnects (to r2): its assignments follow it.
	a1b := store.AgentSession{AgentID: "a1", SessionID: "a1-2", ReplicaID: "r2", Version: strings.Repeat("é", 200), ConnectedAt: time.Now()}
	replaced, inherited, err := s.PutAgentSession(ctx, a1b)
	if err != nil {
		t.Fatal(err)
	}
	if replaced == nil || replaced.SessionID != "a1-1" || replaced.ReplicaID != "r1" || replaced.Version != "1.2.3" || !slices.Equal(inherited, []string{"x", "y"}) {
		t.Fatalf("reconnection: replaced %+v, inherited %v; want a1-1 on r1 of version 1.2.3, x y", replaced, inherited)
	}
	// A version longer than the column is cut, at a character boundary.
	if got := sessions(t, s); got[0].Version != strings.Repeat("é", 126) {
		t.Errorf("version of 400 bytes recorded as %q, want its first 252 bytes", got[0].Version)
	}
	if _, err := s.ClaimAssignments(ctx, a1, []string{"w"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("claim by a replaced session: %v, want ErrConflict", err)
	}
	for _, a := range assignments(t, s) {
		if a.AgentID == "a1" && (a.SessionID != "a1-2" || a.ReplicaID != "r2") {
			t.Errorf("assignment not moved to the new session: %+v", a)
		}
	}
	// The old session ending late releases nothing of the new one.
	if err := s.RemoveAgentSession(ctx, "a1", "a1-1"); err != nil {
		t.Fatal(err)
	}
	if got := len(assignments(t, s)); got != 3 {
		t.Errorf("%d assignments after a stale session ended, want 3", got)
	}
	// a2 releases z; a1 ends: their accounts become free for the other.
	if err := s.ReleaseAssignments(ctx, "a2-1", []string{"z"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveAgentSession(ctx, "a1", "a1-2"); err != nil {
		t.Fatal(err)
	}
	if got := claim(a2, "x", "y", "z"); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("a2 claimed %v after a1 left, want x y z", got)
	}
	if got := sessions(t, s); len(got) != 1 || got[0].AgentID != "a2" {
		t.Errorf("sessions = %+v, want only a2", got)
	}
}

// Parallel claimers of the same accounts: every account ends with exactly
// one holder, and each claimer's answer agrees with the table.
func testClusterParallelClaims(t *testing.T, s store.Store) {
	ctx := context.Background()
	var accounts []string
	for i := range 600 {
		accounts = append(accounts, fmt.Sprintf("acct-%03d", i))
	}
	const claimers = 4
	got := make([][]string, claimers)
	var wg sync.WaitGroup
	for i := range claimers {
		sess := store.AgentSession{AgentID: fmt.Sprintf("agent-%d", i), SessionID: fmt.Sprintf("s-%d", i), ReplicaID: fmt.Sprintf("r-%d", i), ConnectedAt: time.Now()}
		if _, _, err := s.PutAgentSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			c, err := s.ClaimAssignments(ctx, sess, accounts)
			if err != nil {
				t.Errorf("claimer %d: %v", i, err)
			}
			got[i] = c
		})
	}
	wg.Wait()
	owner := map[string]string{}
	for _, a := range assignments(t, s) {
		owner[a.Account] = a.SessionID
	}
	if len(owner) != len(accounts) {
		t.Fatalf("%d accounts assigned, want %d", len(owner), len(accounts))
	}
	total := 0
	for i, c := range got {
		total += len(c)
		for _, a := range c {
			if owner[a] != fmt.Sprintf("s-%d", i) {
				t.Errorf("claimer %d got %s, but the table gives it to %s", i, a, owner[a])
			}
		}
	}
	if total != len(accounts) {
		t.Errorf("claimers got %d accounts in all, want %d (each exactly once)", total, len(accounts))
	}
}

func sessions(t *testing.T, s store.Store) []store.AgentSession {
	t.Helper()
	got, err := s.AgentSessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func assignments(t *testing.T, s store.Store) []store.Assignment {
	t.Helper()
	got, err := s.Assignments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Fenced changes persist only while their session is the agent's live one.
func testClusterFencedApply(t *testing.T, s store.Store) {
	ctx := context.Background()
	cms := stream("prod", configMaps(), "")
	old := store.AgentSession{AgentID: "a", SessionID: "a-1", ReplicaID: "r1", ConnectedAt: time.Now()}
	if _, _, err := s.PutAgentSession(ctx, old); err != nil {
		t.Fatal(err)
	}
	fence := store.Fence{AgentID: "a", SessionID: "a-1"}
	if err := s.ApplyChangesFenced(ctx, fence, relist(cms, "5", obj(cms, "ns", "x", "4", nil))); err != nil {
		t.Fatalf("live session: %v", err)
	}
	// The agent reconnects elsewhere: the old session's late batch is
	// refused, and nothing of it lands.
	if _, _, err := s.PutAgentSession(ctx, store.AgentSession{AgentID: "a", SessionID: "a-2", ReplicaID: "r2", ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	err := s.ApplyChangesFenced(ctx, fence, []store.Change{upserted(cms, obj(cms, "ns", "y", "9", nil))})
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("replaced session: %v, want ErrFenced", err)
	}
	if objs, _ := s.ListObjects(ctx, store.Query{Account: "prod", Name: "y"}); len(objs) != 0 {
		t.Fatalf("a fenced change was persisted: %v", objs)
	}
	if err := s.ApplyChangesFenced(ctx, store.Fence{AgentID: "a", SessionID: "a-2"}, []store.Change{upserted(cms, obj(cms, "ns", "y", "9", nil))}); err != nil {
		t.Fatalf("new session: %v", err)
	}
	if err := s.RemoveAgentSession(ctx, "a", "a-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyChangesFenced(ctx, store.Fence{AgentID: "a", SessionID: "a-2"}, []store.Change{bookmark(cms, "10")}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("ended session: %v, want ErrFenced", err)
	}
}

// AgentsServing lists the agents recorded with an account.
func testAgentsServing(t *testing.T, s store.Store) {
	ctx := context.Background()
	for agent, accts := range map[string][]string{"a": {"x", "y"}, "b": {"y"}} {
		if err := s.SetAgentAccounts(ctx, agent, accts); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AgentsServing(ctx, "y")
	if err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("AgentsServing(y) = %v, %v", got, err)
	}
	if got, _ := s.AgentsServing(ctx, "z"); len(got) != 0 {
		t.Fatalf("AgentsServing(z) = %v", got)
	}
}

// Sessions of one agent recorded at once (its reconnections racing on
// several replicas): each call replaces exactly the session recorded just
// before it, so every session but the last is reported replaced once, and
// none is missed (its replica must be told to drop it).
func testClusterParallelSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.PutAgentSession(ctx, store.AgentSession{AgentID: "a", SessionID: "s-first", ReplicaID: "r", ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	replaced := make([]*store.AgentSession, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, _, err := s.PutAgentSession(ctx, store.AgentSession{AgentID: "a", SessionID: fmt.Sprintf("s-%d", i), ReplicaID: fmt.Sprintf("r-%d", i), ConnectedAt: time.Now()})
			if err != nil {
				t.Errorf("session %d: %v", i, err)
			}
			replaced[i] = r
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range replaced {
		if r == nil {
			t.Errorf("session %d replaced none: the session before it was missed", i)
			continue
		}
		if seen[r.SessionID] {
			t.Errorf("session %s reported replaced twice", r.SessionID)
		}
		seen[r.SessionID] = true
	}
	live, err := s.AgentSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || seen[live[0].SessionID] || !seen["s-first"] {
		t.Errorf("live %+v, replaced %v: want one live session, the only one not replaced", live, seen)
	}
}
