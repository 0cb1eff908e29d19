package controlplane

import (
	"context"
	"errors"
	"testing"

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

	sess.closed = true
	if sess.deliverOperation(&kubesvcv1.OperationResult{Id: "t/0"}) {
		t.Error("a closed session handed a result over")
	}
	close(sess.done)
	sess.out <- &kubesvcv1.ControlMessage{} // full: roundTrip cannot send
	if _, err := roundTrip(context.Background(), sess, &kubesvcv1.ControlMessage{}, ch); !errors.Is(err, ErrAgentGone) {
		t.Errorf("session gone before sending: %v, want ErrAgentGone", err)
	}
}
