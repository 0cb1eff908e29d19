package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testlog"
)

// groupEnv is a SQLite store whose group committer the test holds: calls
// queue as they would behind a running transaction, and release runs them
// as the group the next leader takes.
type groupEnv struct {
	s    *sqlStore
	logs *testlog.Buffer
}

func newGroupEnv(t *testing.T) *groupEnv {
	t.Helper()
	logs := &testlog.Buffer{}
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cache.db"),
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := st.(*sqlStore)
	if !s.d.groupCommit {
		t.Fatal("SQLite does not group commits")
	}
	return &groupEnv{s: s, logs: logs}
}

// hold makes the committer look busy, as while a transaction runs.
func (e *groupEnv) hold() {
	e.s.group.mu.Lock()
	e.s.group.running = true
	e.s.group.mu.Unlock()
}

// queued waits until n calls wait in the queue.
func (e *groupEnv) queued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		e.s.group.mu.Lock()
		got := len(e.s.group.queue)
		e.s.group.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// release ends the pretended transaction as a leader does: the first
// queued call leads the next group.
func (e *groupEnv) release() {
	g := &e.s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	next := g.queue[0]
	g.queue = g.queue[1:]
	close(next.lead)
}

var groupStream = StreamKey{Account: "a", Resource: Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}

func upsertOf(account, name, rv string) Change {
	k := groupStream
	k.Account = account
	return Change{Type: Upserted, Stream: k, Object: &Object{
		ObjectKey: ObjectKey{Account: account, Kind: "ConfigMap", Namespace: "ns", Name: name}, ResourceVersion: rv,
		JSON: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"}}`),
	}}
}

func (e *groupEnv) has(t *testing.T, account, name string) bool {
	t.Helper()
	_, err := e.s.GetObject(context.Background(), ObjectKey{Account: account, Kind: "ConfigMap", Namespace: "ns", Name: name})
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// Calls queued behind a running transaction commit in one transaction,
// each with its own outcome: a call whose session was replaced gets
// ErrFenced and writes nothing, the others commit, and every call's
// objects come back as stored.
func TestGroupCommitKeepsEachCallsFence(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	for _, a := range []string{"a1", "a2", "a3"} {
		if _, _, err := e.s.PutAgentSession(ctx, AgentSession{AgentID: a, SessionID: a + "-1", ReplicaID: "r", ConnectedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// a2 reconnected: its first session is over.
	if _, _, err := e.s.PutAgentSession(ctx, AgentSession{AgentID: "a2", SessionID: "a2-2", ReplicaID: "r", ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.hold()
	calls := map[string][]Change{}
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, a := range []string{"a1", "a2", "a3"} {
		calls[a] = []Change{upsertOf(a, "x", "5"), upsertOf(a, "y", "6")}
		wg.Go(func() {
			err := e.s.ApplyChangesFenced(ctx, Fence{AgentID: a, SessionID: a + "-1"}, calls[a])
			mu.Lock()
			errs[a] = err
			mu.Unlock()
		})
		e.queued(t, i+1) // in this order
	}
	e.release()
	wg.Wait()
	if errs["a1"] != nil || errs["a3"] != nil || !errors.Is(errs["a2"], ErrFenced) {
		t.Fatalf("outcomes %v: want a1 and a3 committed, a2 fenced", errs)
	}
	if !strings.Contains(e.logs.String(), "calls committed together") || !strings.Contains(e.logs.String(), "calls=3") {
		t.Errorf("the three calls did not share a transaction; log:\n%s", e.logs)
	}
	for _, a := range []string{"a1", "a3"} {
		if !e.has(t, a, "x") || !e.has(t, a, "y") {
			t.Errorf("%s's objects not stored", a)
		}
		if o := calls[a][0].Object; o.UpdatedAt.IsZero() || o.Resource != "configmaps" {
			t.Errorf("%s's object not completed as stored: %+v", a, o)
		}
	}
	if e.has(t, "a2", "x") || e.has(t, "a2", "y") {
		t.Error("the fenced call's objects were stored")
	}
	// The committer is free again: a call runs at once.
	if err := e.s.ApplyChanges(ctx, []Change{upsertOf("a1", "z", "7")}); err != nil || !e.has(t, "a1", "z") {
		t.Fatalf("after the group: %v", err)
	}
}

// A call that fails in the database rolls the group back; the calls then
// run one transaction each, so the failing one gets its error and the
// others commit.
func TestGroupCommitFailureIsTheFailingCallsOnly(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	// A real failure of the database, for one object name only.
	if _, err := e.s.w.ExecContext(ctx, `CREATE TRIGGER poison BEFORE INSERT ON `+objectsTable+
		` WHEN NEW.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END`); err != nil {
		t.Fatal(err)
	}
	e.hold()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, a := range []string{"a1", "a2", "a3"} {
		changes := []Change{upsertOf(a, "x", "5")}
		if a == "a2" {
			changes = append(changes, upsertOf(a, "poison", "6"))
		}
		wg.Go(func() { errs[i] = e.s.ApplyChanges(ctx, changes) })
		e.queued(t, i+1)
	}
	e.release()
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "poisoned row") {
		t.Fatalf("outcomes %v: want only the second call to fail, with the database's error", errs)
	}
	if !e.has(t, "a1", "x") || !e.has(t, "a3", "x") {
		t.Error("the calls that did not fail were not committed")
	}
	if e.has(t, "a2", "x") {
		t.Error("the failed call was committed in part")
	}
}

// A call whose context ends while it waits in the queue returns the
// context's error, writes nothing, and does not hold up the others.
func TestGroupCommitCallGivenUpInTheQueue(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	e.hold()
	first := make(chan error, 1)
	go func() { first <- e.s.ApplyChanges(ctx, []Change{upsertOf("a1", "x", "5")}) }()
	e.queued(t, 1)
	gone, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() { second <- e.s.ApplyChanges(gone, []Change{upsertOf("a2", "x", "5")}) }()
	e.queued(t, 2)
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("given-up call: %v, want context.Canceled", err)
	}
	e.queued(t, 1)
	e.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !e.has(t, "a1", "x") || e.has(t, "a2", "x") {
		t.Error("want the first call stored and the given-up one not")
	}
}

// Many writers at once, each its own stream and its objects' versions
// rising: every call commits, and in its order (the last version wins).
func TestGroupCommitUnderConcurrentWriters(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	const writers, calls = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers*calls)
	for w := range writers {
		account := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for i := range calls {
				errs <- e.s.ApplyChanges(ctx, []Change{upsertOf(account, fmt.Sprint("o", i%5), fmt.Sprint(i+1))})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		for o := range 5 {
			got, err := e.s.GetObject(ctx, ObjectKey{Account: fmt.Sprintf("w%d", w), Kind: "ConfigMap", Namespace: "ns", Name: fmt.Sprint("o", o)})
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint(calls - 5 + o + 1); got.ResourceVersion != want {
				t.Errorf("w%d o%d at %s, want %s (the last call's)", w, o, got.ResourceVersion, want)
			}
		}
	}
	e.s.group.mu.Lock()
	defer e.s.group.mu.Unlock()
	if e.s.group.running || len(e.s.group.queue) != 0 {
		t.Errorf("committer left busy (running %v, %d queued)", e.s.group.running, len(e.s.group.queue))
	}
}
