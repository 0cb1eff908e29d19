package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/rest"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// flakyControlPlane is a TEST DOUBLE OF THE CONTROL PLANE on a real socket
// whose sessions the test drives one by one: it sends what the test puts
// on a session's send channel, hands over what the agent sends, and breaks
// the stream when the test says so.
type flakyControlPlane struct {
	kubesvcv1.UnimplementedAgentServiceServer
	addr     string
	sessions chan *flakySession
}

type flakySession struct {
	in   chan *kubesvcv1.AgentMessage
	send chan *kubesvcv1.ControlMessage
	end  chan error // the stream ends with this status
}

func startFlakyControlPlane(t *testing.T) *flakyControlPlane {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyControlPlane{addr: lis.Addr().String(), sessions: make(chan *flakySession, 16)}
	serveAgentService(t, lis, f)
	return f
}

func (f *flakyControlPlane) Connect(stream grpc.BidiStreamingServer[kubesvcv1.AgentMessage, kubesvcv1.ControlMessage]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Welcome{Welcome: &kubesvcv1.Welcome{SessionId: "s"}}}); err != nil {
		return err
	}
	s := &flakySession{in: make(chan *kubesvcv1.AgentMessage, 1024), send: make(chan *kubesvcv1.ControlMessage, 16), end: make(chan error, 1)}
	f.sessions <- s
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			s.in <- m
		}
	}()
	for {
		select {
		case m := <-s.send:
			if err := stream.Send(m); err != nil {
				return err
			}
		case err := <-s.end:
			return err
		case err := <-recvErr:
			return err
		}
	}
}

func (f *flakyControlPlane) next(t *testing.T) *flakySession {
	t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not open a session within 10s")
		return nil
	}
}

// result returns the next operation result the agent sends on s, or nil
// after d.
func (s *flakySession) result(d time.Duration) *kubesvcv1.OperationResult {
	timeout := time.After(d)
	for {
		select {
		case m := <-s.in:
			if r := m.GetOperationResult(); r != nil {
				return r
			}
		case <-timeout:
			return nil
		}
	}
}

// runAgent runs a until the test ends, then checks that Run returned
// without an error.
func runAgent(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// countingExecutor answers every operation with its type, counting calls.
type countingExecutor struct{ calls *atomic.Int64 }

func (e countingExecutor) Execute(_ context.Context, opType string, _ []byte) ([]byte, error) {
	n := e.calls.Add(1)
	return fmt.Appendf(nil, `{"done": %q, "call": %d}`, opType, n), nil
}

// A result whose stream breaks before the control plane acknowledged it is
// sent again on the next session, at least BackOff after the first attempt;
// once acknowledged it is dropped and never sent again. The operation runs
// once.
func TestOperationResultResentUntilAcknowledged(t *testing.T) {
	t.Parallel()
	cp := startFlakyControlPlane(t)
	var calls atomic.Int64
	backOff := 300 * time.Millisecond
	a, err := New(Config{
		ID: "agent-resend", Target: cp.addr, Log: slog.New(slog.DiscardHandler),
		Backoff:         Backoff{BaseDelay: 20 * time.Millisecond, Multiplier: 1, MaxDelay: 20 * time.Millisecond},
		Accounts:        []Account{{Name: "main", Kubeconfig: []byte(unreachableKubeconfig)}},
		NewExecutor:     func(*rest.Config) (Executor, error) { return countingExecutor{&calls}, nil },
		ResponseRetries: &ResponseRetries{Enabled: true, MaxRetries: 3, BackOff: backOff},
	})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	s1 := cp.next(t)
	// The agent makes its first attempt after it gets the operation, so
	// after this; when the result arrives here is no bound: it may take
	// longer on its way than the resent one.
	sentAt := time.Now()
	s1.send <- &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Operation{Operation: &kubesvcv1.Operation{
		Id: "task-1/0", Account: "main", Type: "scaleManifest", DeadlineMs: time.Now().Add(time.Minute).UnixMilli()}}}
	first := s1.result(10 * time.Second)
	if first == nil || first.GetId() != "task-1/0" || !first.GetSuccess() || string(first.GetPayload()) != `{"done": "scaleManifest", "call": 1}` {
		t.Fatalf("first result: %v", first)
	}
	if n := a.PendingResults(); n != 1 {
		t.Errorf("pending results before the ack: %d, want 1", n)
	}
	s1.end <- status.Error(codes.Unavailable, "connection cut before the ack")

	s2 := cp.next(t)
	again := s2.result(10 * time.Second)
	if again == nil || again.GetId() != "task-1/0" || string(again.GetPayload()) != string(first.GetPayload()) {
		t.Fatalf("resent result: %v, want %v", again, first)
	}
	if gap := time.Since(sentAt); gap < backOff {
		t.Errorf("resent %s after the operation was sent, want at least backOff %s after the first attempt", gap, backOff)
	}
	s2.send <- &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_OperationResultAck{OperationResultAck: &kubesvcv1.OperationResultAck{Id: "task-1/0"}}}
	deadline := time.Now().Add(10 * time.Second)
	for a.PendingResults() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the acknowledged result is still kept")
		}
		time.Sleep(10 * time.Millisecond)
	}

	s2.end <- status.Error(codes.Unavailable, "cut again")
	s3 := cp.next(t)
	if r := s3.result(3 * backOff); r != nil {
		t.Errorf("an acknowledged result was sent again: %v", r)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the operation ran %d times, want once", n)
	}
}

const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`

func TestResultBox(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	res := func(id string) *kubesvcv1.OperationResult { return &kubesvcv1.OperationResult{Id: id} }
	ids := func(rs []*kubesvcv1.OperationResult) string {
		s := ""
		for _, r := range rs {
			s += r.GetId() + " "
		}
		return s
	}
	t0 := time.Now()

	b := newResultBox(ResponseRetries{Enabled: true, MaxRetries: 1, BackOff: time.Second}, log)
	b.put(res("a"), time.Time{})
	b.put(res("b"), t0.Add(10*time.Second))
	s1 := b.newSession()
	if got, _ := b.due(s1, t0); ids(got) != "a b " {
		t.Errorf("first attempts: %q", ids(got))
	}
	if got, _ := b.due(s1, t0.Add(5*time.Second)); len(got) != 0 {
		t.Errorf("sent again on the same session: %q", ids(got))
	}
	s2 := b.newSession()
	if got, next := b.due(s2, t0.Add(500*time.Millisecond)); len(got) != 0 || !next.Equal(t0.Add(time.Second)) {
		t.Errorf("within backOff: %q, next %v", ids(got), next.Sub(t0))
	}
	b.ack("a")
	if got, _ := b.due(s2, t0.Add(time.Second)); ids(got) != "b " {
		t.Errorf("second attempts: %q", ids(got))
	}
	s3 := b.newSession()
	if got, _ := b.due(s3, t0.Add(5*time.Second)); len(got) != 0 || b.len() != 0 {
		t.Errorf("after 1+maxRetries attempts: %q sent, %d kept", ids(got), b.len())
	}

	// Past the control plane's deadline: dropped.
	b.put(res("late"), t0.Add(time.Second))
	if got, _ := b.due(b.newSession(), t0.Add(2*time.Second)); len(got) != 0 || b.len() != 0 {
		t.Errorf("past its deadline: %q sent, %d kept", ids(got), b.len())
	}

	// On one session that never acknowledges: sent again every
	// sameSessionRetry, but 1+maxRetries times at most and never past
	// the deadline; then dropped.
	one := newResultBox(ResponseRetries{Enabled: true, MaxRetries: 2, BackOff: time.Second}, log)
	one.put(res("retries"), t0.Add(time.Hour))
	one.put(res("deadline"), t0.Add(sameSessionRetry+sameSessionRetry/2))
	s := one.newSession()
	sent := map[string]int{}
	for at := t0; at.Before(t0.Add(2 * time.Hour)); at = at.Add(time.Second) {
		got, _ := one.due(s, at)
		for _, r := range got {
			sent[r.GetId()]++
			if r.GetId() == "deadline" && at.After(t0.Add(sameSessionRetry+sameSessionRetry/2)) {
				t.Errorf("sent at %s, past its deadline", at.Sub(t0))
			}
		}
	}
	if sent["retries"] != 3 || sent["deadline"] != 2 || one.len() != 0 {
		t.Errorf("unacknowledged on one session: sent %v (want 3 and 2), %d still kept", sent, one.len())
	}

	// Disabled: sent once, never kept.
	off := newResultBox(ResponseRetries{Enabled: false, MaxRetries: 3}, log)
	off.put(res("x"), time.Time{})
	if got, _ := off.due(off.newSession(), t0); ids(got) != "x " || off.len() != 0 {
		t.Errorf("retries disabled: %q sent, %d kept", ids(got), off.len())
	}

	// Bounded: the oldest goes first.
	capped := newResultBox(DefaultResponseRetries(), log)
	for i := range maxKeptResults + 2 {
		capped.put(res(fmt.Sprint(i)), time.Time{})
	}
	got, _ := capped.due(capped.newSession(), t0)
	if len(got) != maxKeptResults || got[0].GetId() != "2" {
		t.Errorf("capped box: %d results, first %s", len(got), got[0].GetId())
	}
}

// An operation id sent again (a control plane that lost track of it while
// forwarding) runs once: while it runs the duplicate is ignored, after it
// the duplicate gets the same result again.
func TestOperatorRunsAnOperationIDOnce(t *testing.T) {
	o := newOperator(DefaultResponseRetries(), slog.New(slog.DiscardHandler))
	defer o.stop()
	var runs atomic.Int32
	release := make(chan struct{})
	exec := func(_ context.Context, op *kubesvcv1.Operation) *kubesvcv1.OperationResult {
		runs.Add(1)
		<-release
		return &kubesvcv1.OperationResult{Id: op.GetId(), Success: true, Payload: []byte(`{"n":1}`)}
	}
	op := &kubesvcv1.Operation{Id: "task/0", DeadlineMs: time.Now().Add(time.Minute).UnixMilli()}
	o.start(op, exec)
	o.start(op, exec) // while running: ignored
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for o.results.len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no result kept")
		}
		time.Sleep(5 * time.Millisecond)
	}
	o.results.ack("task/0")
	o.start(op, exec) // finished and acknowledged: the same result again
	if got := o.results.len(); got != 1 {
		t.Fatalf("%d results kept after the duplicate, want 1 (the first result again)", got)
	}
	due, _ := o.results.due(o.results.newSession(), time.Now())
	if len(due) != 1 || string(due[0].GetPayload()) != `{"n":1}` {
		t.Fatalf("due = %v", due)
	}
	o.wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("executed %d times, want 1", n)
	}
}

// At capacity the remembered ids shrink to seven eighths in one go, the
// oldest finished first; running operations are never forgotten.
func TestSeenIDsEvictedOldestFinishedFirst(t *testing.T) {
	o := newOperator(DefaultResponseRetries(), slog.New(slog.DiscardHandler))
	defer o.stop()
	base := time.Now().Add(time.Hour)
	add := func(i int, finished bool) string {
		id := fmt.Sprintf("task-%04d/0", i)
		op := &kubesvcv1.Operation{Id: id, Account: "main"}
		if o.dedupe(op, base.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("%s seen before", id)
		}
		if finished {
			o.finished(&kubesvcv1.OperationResult{Id: id, Success: true})
		}
		return id
	}
	running := add(0, false) // the oldest, still running
	for i := 1; i < maxSeen; i++ {
		add(i, true)
	}
	if n := len(o.seen); n != maxSeen {
		t.Fatalf("%d ids remembered, want %d", n, maxSeen)
	}
	newest := add(maxSeen, true)
	if n := len(o.seen); n != maxSeen*7/8+1 {
		t.Errorf("%d ids remembered after the eviction, want %d", n, maxSeen*7/8+1)
	}
	for _, id := range []string{running, newest, fmt.Sprintf("task-%04d/0", maxSeen-1)} {
		if o.accountOf(id) != "main" {
			t.Errorf("%s forgotten", id)
		}
	}
	if o.accountOf("task-0001/0") != "" {
		t.Error("the oldest finished id is still remembered")
	}
	// The next eighth needs no eviction.
	for i := maxSeen + 1; i < maxSeen+maxSeen/8; i++ {
		add(i, true)
	}
	if n := len(o.seen); n != maxSeen {
		t.Errorf("%d ids remembered, want %d", n, maxSeen)
	}
}

// BenchmarkDedupeAtCapacity is the cost of remembering one more operation
// id when maxSeen are remembered already.
func BenchmarkDedupeAtCapacity(b *testing.B) {
	o := newOperator(DefaultResponseRetries(), slog.New(slog.DiscardHandler))
	defer o.stop()
	deadline := time.Now().Add(time.Hour)
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("task-%d/0", i)
		o.dedupe(&kubesvcv1.Operation{Id: id}, deadline)
		o.finished(&kubesvcv1.OperationResult{Id: id})
	}
}
