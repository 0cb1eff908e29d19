package controlplane

import (
	"context"
	"fmt"
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// An agent that sends more than a relayed request's window breaks that
// request only: the receive loop never waits for a slow client, and parts
// of requests that ended are dropped.
func TestProxyWindowOverrun(t *testing.T) {
	sess := &session{relays: map[string]*relayed{}}
	over := sess.addRelay("over")
	ok := sess.addRelay("ok")
	// The head, a full window of chunks and the end fit.
	for range proxyWindow + 2 {
		sess.deliverProxy(&kubesvcv1.ProxyResponse{Id: "over", Body: []byte("x")})
	}
	select {
	case <-over.broken:
		t.Fatal("broken within its window")
	default:
	}
	sess.deliverProxy(&kubesvcv1.ProxyResponse{Id: "over", Body: []byte("x")})
	select {
	case <-over.broken:
	default:
		t.Fatal("not broken past its window")
	}
	// Later parts of the broken request are dropped, without blocking.
	sess.deliverProxy(&kubesvcv1.ProxyResponse{Id: "over"})
	sess.deliverProxy(&kubesvcv1.ProxyResponse{Id: "unknown"})
	sess.deliverProxy(&kubesvcv1.ProxyResponse{Id: "ok", End: true})
	select {
	case f := <-ok.frames:
		if !f.GetEnd() {
			t.Errorf("other request got %v", f)
		}
	case <-ok.broken:
		t.Fatal("the other request broke too")
	}
}

// recordingStream is a TEST DOUBLE of the gRPC server stream: it records
// what is sent.
type recordingStream struct {
	kubesvcv1.AgentService_ConnectServer
	sent chan *kubesvcv1.ControlMessage
}

func (r *recordingStream) Send(m *kubesvcv1.ControlMessage) error {
	r.sent <- m
	return nil
}

// A client's bytes for an upgraded request never go ahead of control
// messages (operations, commands, assignments) queued at the same time.
func TestSendLoopControlBeforeBulk(t *testing.T) {
	out, bulk := make(chan *kubesvcv1.ControlMessage, 4), make(chan *kubesvcv1.ControlMessage, 4)
	for i := range 3 {
		bulk <- &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyData{ProxyData: &kubesvcv1.ProxyData{Id: fmt.Sprint(i)}}}
	}
	out <- &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Operation{Operation: &kubesvcv1.Operation{Id: "op"}}}
	out <- &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyCancel{ProxyCancel: &kubesvcv1.ProxyCancel{Id: "c"}}}
	stream := &recordingStream{sent: make(chan *kubesvcv1.ControlMessage, 8)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sendLoop(ctx, &sender{stream: stream}, out, bulk) }()
	var order []string
	for range 5 {
		m := <-stream.sent
		switch {
		case m.GetOperation() != nil:
			order = append(order, "op")
		case m.GetProxyCancel() != nil:
			order = append(order, "cancel")
		default:
			order = append(order, "data")
		}
	}
	cancel()
	<-done
	if fmt.Sprint(order) != "[op cancel data data data]" {
		t.Errorf("sent %v, want the control messages first", order)
	}
}
