package agent

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// burstControlPlane is a TEST DOUBLE OF THE CONTROL PLANE: it lets the
// agent fill its window of unacknowledged batches and then its send queue,
// sends a burst of operations, then the acknowledgements, and from then on acknowledges
// every batch; after 3 s without one (once one came) it ends the stream,
// as the real one drops a silent agent.
type burstControlPlane struct {
	kubesvcv1.UnimplementedAgentServiceServer
	progress  chan string
	queueFull chan struct{} // closed by the test once the agent's send queue is full
}

func (c *burstControlPlane) Connect(stream grpc.BidiStreamingServer[kubesvcv1.AgentMessage, kubesvcv1.ControlMessage]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Welcome{Welcome: &kubesvcv1.Welcome{SessionId: "s"}}}); err != nil {
		return err
	}
	batches := make(chan uint64, 1<<16)
	go func() {
		defer close(batches)
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			if b := m.GetChanges(); b != nil {
				batches <- b.GetSeq()
			}
		}
	}()
	var seqs []uint64
	for len(seqs) < maxInflightBatches {
		seqs = append(seqs, <-batches)
	}
	c.progress <- "window full"
	<-c.queueFull
	for i := range 300 {
		op := &kubesvcv1.Operation{Id: fmt.Sprintf("op-%d/0", i), Account: "nowhere", Type: "scaleManifest"}
		if err := stream.Send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Operation{Operation: op}}); err != nil {
			return err
		}
	}
	for _, s := range seqs {
		if err := stream.Send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Ack{Ack: &kubesvcv1.BatchAck{Seq: s}}}); err != nil {
			return err
		}
	}
	// Silent for 3 s once it has sent again (the test stopped its
	// changes): the agent is dropped. Until then the test's own deadline
	// applies: the burst may take a while on a busy machine.
	var silent <-chan time.Time
	for {
		select {
		case s, ok := <-batches:
			if !ok {
				return nil
			}
			c.progress <- "batch after the acks"
			if err := stream.Send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Ack{Ack: &kubesvcv1.BatchAck{Seq: s}}}); err != nil {
				return err
			}
			silent = time.After(3 * time.Second)
		case <-silent:
			return fmt.Errorf("agent silent")
		}
	}
}

// A burst of operations while the send queue is full behind unacknowledged
// batches does not stop the session: the receive loop never waits for the
// operations' consumer, so the acknowledgements behind them still free the
// window. And when the control plane ends the stream, the session ends.
func TestOperationBurstBehindAFullQueue(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp := &burstControlPlane{progress: make(chan string, 1<<16), queueFull: make(chan struct{})}
	serveAgentService(t, lis, cp)
	a, err := New(Config{Target: lis.Addr().String(), ID: "x", ZoneID: "z", Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := (&controlPlaneDouble{addr: lis.Addr().String()}).dial(t).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_Hello{Hello: a.hello()}}); err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(a, first.GetWelcome())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // the account runners' part: changes as fast as they go
		for i := 0; ; i++ {
			if s.emit(runCtx, testChange(i, 10)) != nil {
				return
			}
		}
	}()
	ended := make(chan error, 1)
	go func() { ended <- s.run(runCtx, cancel, stream, 2*defaultMaxBatchBytes) }()

	wait := func(what string) {
		t.Helper()
		select {
		case <-cp.progress:
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s within 20 s (send queue %d of %d)", what, len(s.out), cap(s.out))
		}
	}
	wait("full window")
	// The operations must meet a full queue for the test to mean
	// anything: the results they produce cannot be queued.
	for deadline := time.Now().Add(20 * time.Second); len(s.out) < cap(s.out); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("send queue %d of %d after 20 s", len(s.out), cap(s.out))
		}
	}
	close(cp.queueFull)
	wait("batch after the acknowledgements")
	stop()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the session did not end within 20 s of being stopped")
	}
}
