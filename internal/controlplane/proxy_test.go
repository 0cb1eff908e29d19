package controlplane

import (
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
