package controlplane

import (
	"context"
	"errors"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// Once a session is marked closed (just before its done channel closes),
// results are no longer handed to its waiters, who may have given up on
// seeing done: the result goes unacknowledged and the agent sends it again
// on its next session. Before that, a waiting operation gets its result.
func TestClosedSessionHandsNoResultOver(t *testing.T) {
	sess := &session{agentID: "a1", done: make(chan struct{}), out: make(chan *kubesvcv1.ControlMessage, 1),
		pendingOps: map[string]chan *kubesvcv1.OperationResult{}}
	ch := make(chan *kubesvcv1.OperationResult, 1)
	sess.pendingOps["t/0"] = ch
	if sess.deliverOperation(&kubesvcv1.OperationResult{Id: "other/0"}) {
		t.Error("a result nobody waits for was handed over")
	}
	if !sess.deliverOperation(&kubesvcv1.OperationResult{Id: "t/0", Success: true}) {
		t.Fatal("a result for a waiting operation was not handed over")
	}
	if res := <-ch; !res.GetSuccess() {
		t.Fatalf("handed over %v", res)
	}

	if sess.deliverOperation(&kubesvcv1.OperationResult{Id: "t/0", Success: true}) {
		t.Error("a result was handed over twice")
	}

	sess.pendingOps["t/0"] = ch
	sess.closed = true
	if sess.deliverOperation(&kubesvcv1.OperationResult{Id: "t/0"}) {
		t.Error("a closed session handed a result over")
	}
	close(sess.done)
	sess.out <- &kubesvcv1.ControlMessage{} // full: roundTrip cannot send
	if _, err := roundTrip(context.Background(), sess, &kubesvcv1.ControlMessage{}, ch, func() {}); !errors.Is(err, ErrAgentGone) {
		t.Errorf("session gone before sending: %v, want ErrAgentGone", err)
	}
}

// A result handed over (and so acknowledged to the agent) just as its
// waiter's deadline passes is returned, never dropped; a waiter that gave
// up first withdraws, and a result arriving after that is not handed over
// (it goes to the history instead).
func TestResultHandedOverAtTheDeadlineIsKept(t *testing.T) {
	for i := range 100 {
		sess := &session{agentID: "a1", done: make(chan struct{}), out: make(chan *kubesvcv1.ControlMessage),
			pendingOps: map[string]chan *kubesvcv1.OperationResult{}}
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan *kubesvcv1.OperationResult, 1)
		sess.pendingOps["t/0"] = ch
		withdraw := func() { sess.withdrawOperation("t/0", ch) }
		go func() {
			<-sess.out // sent: the result comes, then the deadline
			sess.deliverOperation(&kubesvcv1.OperationResult{Id: "t/0", Success: true})
			cancel()
		}()
		res, err := roundTrip(ctx, sess, &kubesvcv1.ControlMessage{}, ch, withdraw)
		if err != nil || !res.GetSuccess() {
			t.Fatalf("round %d: result handed over at the deadline: %v, %v", i, res, err)
		}
	}

	sess := &session{agentID: "a1", done: make(chan struct{}), out: make(chan *kubesvcv1.ControlMessage, 1),
		pendingOps: map[string]chan *kubesvcv1.OperationResult{}}
	ch := make(chan *kubesvcv1.OperationResult, 1)
	sess.pendingOps["t/0"] = ch
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sess.out
		cancel()
	}()
	withdraw := func() { sess.withdrawOperation("t/0", ch) }
	if _, err := roundTrip(ctx, sess, &kubesvcv1.ControlMessage{}, ch, withdraw); !errors.Is(err, context.Canceled) {
		t.Errorf("no result by the deadline: %v, want context.Canceled", err)
	}
	if sess.deliverOperation(&kubesvcv1.OperationResult{Id: "t/0"}) {
		t.Error("a result was handed to a waiter that had given up")
	}
}

// The same operation sent again registers a second waiter: the first one
// giving up leaves the second registered, and neither ever blocks.
func TestSecondWaiterOfAnOperationStays(t *testing.T) {
	sess := &session{agentID: "a1", done: make(chan struct{}), out: make(chan *kubesvcv1.ControlMessage, 2),
		pendingOps: map[string]chan *kubesvcv1.OperationResult{}}
	first, second := make(chan *kubesvcv1.OperationResult, 1), make(chan *kubesvcv1.OperationResult, 1)
	sess.pendingOps["t/0"] = first
	sess.pendingOps["t/0"] = second // sent again: the later waiter takes the id
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() {
		// The first waiter's deadline has passed.
		sess.out <- &kubesvcv1.ControlMessage{}
		_, err := roundTrip(ctx, sess, &kubesvcv1.ControlMessage{}, first, func() { sess.withdrawOperation("t/0", first) })
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the first waiter got a result nobody sent")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first waiter blocked")
	}
	if !sess.deliverOperation(&kubesvcv1.OperationResult{Id: "t/0", Success: true}) {
		t.Fatal("the second waiter was unregistered by the first")
	}
	if res := <-second; !res.GetSuccess() {
		t.Errorf("second waiter got %v", res)
	}
}
