package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
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

// queue holds the committer and queues n calls, in order, each call(i)
// in a goroutine of its own; it returns where their errors go and a wait
// for them all (after release).
func (e *groupEnv) queue(t *testing.T, n int, call func(i int) error) (errs []error, wait func()) {
	t.Helper()
	e.hold()
	errs = make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = call(i) })
		e.queued(t, i+1)
	}
	return errs, wg.Wait
}

// free checks that the committer is not left running: a call after the
// test's commits at once.
func (e *groupEnv) free(t *testing.T) {
	t.Helper()
	e.s.group.mu.Lock()
	running := e.s.group.running
	e.s.group.mu.Unlock()
	if running {
		t.Fatal("the committer is left running")
	}
	done := make(chan error, 1)
	go func() { done <- e.s.ApplyChanges(context.Background(), []Change{upsertOf("after", "x", "1")}) }()
	select {
	case err := <-done:
		if err != nil || !e.has(t, "after", "x") {
			t.Fatalf("a call after the test's: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a call after the test's is stuck")
	}
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
	agents := []string{"a1", "a2", "a3"}
	calls := map[string][]Change{}
	for _, a := range agents {
		calls[a] = []Change{upsertOf(a, "x", "5"), upsertOf(a, "y", "6")}
	}
	errs, wait := e.queue(t, len(agents), func(i int) error {
		a := agents[i]
		return e.s.ApplyChangesFenced(ctx, Fence{AgentID: a, SessionID: a + "-1"}, calls[a])
	})
	e.release()
	wait()
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrFenced) {
		t.Fatalf("outcomes %v: want a1 and a3 committed, a2 fenced", errs)
	}
	if txs, calls := e.s.GroupCommits(); txs != 1 || calls != 2 || !strings.Contains(e.logs.String(), "calls=3") {
		t.Errorf("%d shared transactions committing %d calls, want the three calls in one, two of them committed; log:\n%s", txs, calls, e.logs)
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
	e.free(t)
}

// A call whose changes fail in the database rolls the group back: the
// calls before it commit together again, it gets its own error, and the
// calls after it commit together.
func TestGroupCommitFailureIsTheFailingCallsOnly(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	// A real failure of the database, for one object name only.
	if _, err := e.s.w.ExecContext(ctx, `CREATE TRIGGER poison BEFORE INSERT ON `+objectsTable+
		` WHEN NEW.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END`); err != nil {
		t.Fatal(err)
	}
	accounts := []string{"a1", "a2", "a3", "a4", "a5"}
	errs, wait := e.queue(t, len(accounts), func(i int) error {
		changes := []Change{upsertOf(accounts[i], "x", "5")}
		if accounts[i] == "a3" {
			changes = append(changes, upsertOf(accounts[i], "poison", "6"))
		}
		return e.s.ApplyChanges(ctx, changes)
	})
	e.release()
	wait()
	for i, err := range errs {
		if failing := i == 2; failing != (err != nil) || failing && !strings.Contains(err.Error(), "poisoned row") {
			t.Fatalf("outcomes %v: want only the third call to fail, with the database's error", errs)
		}
	}
	for _, a := range accounts {
		if got, want := e.has(t, a, "x"), a != "a3"; got != want {
			t.Errorf("%s's object stored: %v, want %v", a, got, want)
		}
	}
	if got := e.s.group.shared.Load(); got != 2 {
		t.Errorf("%d shared transactions, want 2 (the calls before the failing one, those after)", got)
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

// changeOf is a change of type typ to object name at rv in account's
// stream (an object only where the type has one).
func changeOf(typ ChangeType, account, name, rv string) Change {
	c := upsertOf(account, name, rv)
	c.Type = typ
	switch typ {
	case SyncBegin, SyncEnd, StreamRemoved, Bookmark:
		c.Object = nil
		c.ResourceVersion = rv
	}
	return c
}

// sameStreamCalls are calls on shared streams whose outcome depends on
// what the calls before them did: Applied changes older than the
// stream's position are skipped, newer ones stored; the later of two
// upserts of an object wins; a removed stream is recreated by the next
// change.
func sameStreamCalls() [][]Change {
	return [][]Change{
		{changeOf(SyncBegin, "a", "", ""), changeOf(Listed, "a", "x", "10"), changeOf(Listed, "a", "y", "10"), changeOf(SyncEnd, "a", "", "10")},
		{changeOf(Applied, "a", "x", "9")},
		{changeOf(Applied, "a", "z", "11")},
		{changeOf(Upserted, "a", "x", "12")},
		{changeOf(Applied, "a", "y", "11")},
		{changeOf(Upserted, "a", "w", "13")},
		{changeOf(Upserted, "a", "w", "14")},
		{changeOf(Upserted, "b", "p", "3")},
		{changeOf(StreamRemoved, "b", "", "")},
		{changeOf(Upserted, "b", "q", "4")},
	}
}

// outcome is what calls left: each change's object as the caller sees it
// afterwards, the objects stored and the streams' positions.
func outcome(t *testing.T, s *sqlStore, calls [][]Change) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for i, call := range calls {
		for j, c := range call {
			switch {
			case c.Object == nil:
				out = append(out, fmt.Sprintf("call %d change %d: no object", i, j))
			default:
				out = append(out, fmt.Sprintf("call %d change %d: %s at %s, stored %v", i, j, c.Object.Name, c.Object.ResourceVersion, !c.Object.UpdatedAt.IsZero()))
			}
		}
	}
	objs, err := s.ListObjects(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		out = append(out, fmt.Sprintf("stored %s/%s at %s", o.Account, o.Name, o.ResourceVersion))
	}
	points, err := s.ResumePoints(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points {
		out = append(out, fmt.Sprintf("stream %s at %s", p.Stream.Account, p.ResourceVersion))
	}
	return out
}

// Calls on the same streams in one shared transaction leave what they
// leave one transaction after the other.
func TestGroupCommitSameStreamsAsOneByOne(t *testing.T) {
	ctx := context.Background()
	one := newGroupEnv(t)
	sequential := sameStreamCalls()
	for _, call := range sequential {
		if err := one.s.ApplyChanges(ctx, call); err != nil {
			t.Fatal(err)
		}
	}
	want := outcome(t, one.s, sequential)

	e := newGroupEnv(t)
	grouped := sameStreamCalls()
	errs, wait := e.queue(t, len(grouped), func(i int) error { return e.s.ApplyChanges(ctx, grouped[i]) })
	e.release()
	wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := e.s.group.shared.Load(); got != 1 {
		t.Fatalf("%d shared transactions, want the %d calls in one", got, len(grouped))
	}
	if got := outcome(t, e.s, grouped); !slices.Equal(got, want) {
		t.Errorf("grouped:\n%s\none by one:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// What the scenario must show, whichever way it ran.
	for _, line := range []string{"call 1 change 0: no object", "call 2 change 0: z at 11, stored true", "call 4 change 0: no object",
		"stored a/w at 14", "stored a/x at 12", "stored b/q at 4", "stream a at 14", "stream b at 4"} {
		if !slices.Contains(want, line) {
			t.Errorf("one by one: no %q in\n%s", line, strings.Join(want, "\n"))
		}
	}
	if slices.Contains(want, "stored b/p at 3") {
		t.Error("the removed stream's object is still stored")
	}
}

// A group is at most maxGroupChanges changes: what does not fit waits for
// the next transaction, in its turn.
func TestGroupCommitSplitsAtMaxChanges(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	const per = maxGroupChanges/2 - 24 // two fit, not three
	errs, wait := e.queue(t, 3, func(i int) error {
		var call []Change
		for j := range per {
			call = append(call, changeOf(Upserted, "a", fmt.Sprint("o", j), fmt.Sprint(i*per+j+1)))
		}
		// Every call writes object "last" after the others' last change.
		call = append(call, changeOf(Upserted, "a", "last", fmt.Sprint(i+1)))
		return e.s.ApplyChanges(ctx, call)
	})
	e.release()
	wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := e.s.group.shared.Load(); got != 1 {
		t.Errorf("%d shared transactions, want 1 (the first two calls; the third alone)", got)
	}
	if o, err := e.s.GetObject(ctx, ObjectKey{Account: "a", Kind: "ConfigMap", Namespace: "ns", Name: "last"}); err != nil || o.ResourceVersion != "3" {
		t.Errorf("object last: %v %v, want the third call's (3)", o, err)
	}
}

// A group whose every call gives up while it waits for the writer
// connection: each call returns its context's error, nothing is written,
// and the committer is free again.
func TestGroupCommitEveryCallGivesUp(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	if err := e.s.ApplyChanges(ctx, []Change{upsertOf("a0", "x", "1")}); err != nil { // prepares the statements
		t.Fatal(err)
	}
	conn, err := e.s.w.Conn(ctx) // the one writer connection
	if err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	errs, wait := e.queue(t, 3, func(i int) error {
		return e.s.ApplyChanges(gone, []Change{upsertOf(fmt.Sprint("a", i+1), "x", "5")})
	})
	e.release() // the group waits for the connection the test holds
	e.queued(t, 0)
	cancel()
	wait()
	_ = conn.Close()
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: %v, want context.Canceled", i, err)
		}
		if e.has(t, fmt.Sprint("a", i+1), "x") {
			t.Errorf("call %d's object was stored", i)
		}
	}
	e.free(t)
}

// A leader that panics fails its group's other calls with an error, the
// panic goes on in its own goroutine, and later calls are not stuck
// behind it.
func TestGroupCommitLeaderPanic(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	now := e.s.now
	e.s.now = func() time.Time { panic("clock broke") }
	var panicked any
	errs, wait := e.queue(t, 3, func(i int) (err error) {
		defer func() {
			if p := recover(); p != nil {
				panicked = p // only the leader's goroutine panics
			}
		}()
		return e.s.ApplyChanges(ctx, []Change{upsertOf(fmt.Sprint("a", i+1), "x", "5")})
	})
	e.release()
	wait()
	e.s.now = now
	if panicked != "clock broke" {
		t.Fatalf("the leader's panic: %v", panicked)
	}
	for _, err := range errs[1:] {
		if !errors.Is(err, errGroupPanicked) {
			t.Errorf("the other calls: %v, want errGroupPanicked", errs[1:])
		}
	}
	e.free(t)
}
