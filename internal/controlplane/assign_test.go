package controlplane

import (
	"slices"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

func sess(agent, session, replica string) store.AgentSession {
	return store.AgentSession{AgentID: agent, SessionID: session, ReplicaID: replica}
}

// plan gives each free account to the least busy live session serving it,
// keeps valid assignments where they are, and treats assignments of ended
// sessions as free.
func TestPlan(t *testing.T) {
	sessions := []store.AgentSession{sess("a", "a1", "r1"), sess("b", "b1", "r2"), sess("c", "c1", "r2")}
	served := map[string][]string{
		"a": {"w", "x", "y", "z"},
		"b": {"w", "x", "y", "z"},
		"c": {"only-c"},
		"d": {"orphan"}, // no live session
	}
	assignments := []store.Assignment{
		{Account: "w", SessionID: "a1", ReplicaID: "r1"},
		{Account: "x", SessionID: "gone", ReplicaID: "r3"}, // ended session: free
	}
	got := plan(sessions, served, assignments, replicaLoads(assignments))
	for k := range got {
		slices.Sort(got[k])
	}
	// a holds w, so b (0) gets x first, then ties go by replica load and id.
	want := map[string][]string{"b1": {"x", "z"}, "a1": {"y"}, "c1": {"only-c"}}
	if len(got) != len(want) {
		t.Fatalf("plan = %v, want %v", got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("plan[%s] = %v, want %v (whole plan %v)", k, got[k], v, got)
		}
	}
	for _, accts := range got {
		if slices.Contains(accts, "w") || slices.Contains(accts, "orphan") {
			t.Errorf("plan moved a held account or gave one to no live agent: %v", got)
		}
	}
}

// Two agents starting together split the accounts evenly.
func TestPlanSpreads(t *testing.T) {
	var accounts []string
	for _, c := range "abcdefghij" {
		accounts = append(accounts, string(c))
	}
	sessions := []store.AgentSession{sess("p", "p1", "r1"), sess("q", "q1", "r2")}
	got := plan(sessions, map[string][]string{"p": accounts, "q": accounts}, nil, map[string]int{})
	if len(got["p1"]) != 5 || len(got["q1"]) != 5 {
		t.Fatalf("plan = %v, want 5 each", got)
	}
}

// Two agents sharing an id replace each other's sessions from two hosts in
// turn; one agent reconnecting, from the same host or a new one, does not.
func TestTakingTurns(t *testing.T) {
	for _, c := range []struct {
		prevHost, prevReplaced, nextHost string
		want                             bool
	}{
		{"10.0.0.1", "10.0.0.2", "10.0.0.2", true},
		{"10.0.0.1", "", "10.0.0.2", false},         // a restart on another host
		{"10.0.0.1", "10.0.0.1", "10.0.0.1", false}, // reconnects from one host
		{"10.0.0.1", "10.0.0.3", "10.0.0.2", false}, // moved twice
		{"", "", "", false},
	} {
		if got := takingTurns(&session{host: c.prevHost, replacedHost: c.prevReplaced}, &session{host: c.nextHost}); got != c.want {
			t.Errorf("%+v: %v", c, got)
		}
	}
}
