package agent

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// controlPlaneDouble is a TEST DOUBLE OF THE CONTROL PLANE: a real gRPC
// server on 127.0.0.1:0 implementing kubesvcv1.AgentServiceServer. It
// answers Hello with a configured Welcome, records every later message in
// arrival order, and acknowledges batches either by itself (autoAck) or when
// the test says so (ack). It checks the window on the wire: whenever a batch
// arrives, the batches received minus the acks it has sent must not exceed
// maxInflightBatches.
type controlPlaneDouble struct {
	kubesvcv1.UnimplementedAgentServiceServer

	addr string
	opts doubleOptions

	hellos   chan *kubesvcv1.Hello
	received chan *kubesvcv1.AgentMessage   // after Hello, in arrival order
	acks     chan uint64                    // acks to send
	control  chan *kubesvcv1.ControlMessage // other messages to send

	batches  atomic.Int64
	acksSent atomic.Int64

	mu         sync.Mutex
	violations []string
}

// doubleOptions configure a controlPlaneDouble.
type doubleOptions struct {
	// welcome answers Hello; nil: a Welcome without resume points.
	welcome *kubesvcv1.Welcome
	// autoAck acknowledges every batch as soon as it arrives.
	autoAck bool
	// noWelcome answers Hello with a heartbeat instead (a broken peer).
	noWelcome bool
}

func startControlPlaneDouble(t *testing.T, opts doubleOptions) *controlPlaneDouble {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveControlPlaneDouble(t, lis, opts)
}

// serveControlPlaneDouble is startControlPlaneDouble on lis.
func serveControlPlaneDouble(t *testing.T, lis net.Listener, opts doubleOptions) *controlPlaneDouble {
	t.Helper()
	if opts.welcome == nil {
		opts.welcome = &kubesvcv1.Welcome{SessionId: "test-session", ControlplaneId: "test-double"}
	}
	d := &controlPlaneDouble{
		addr: lis.Addr().String(), opts: opts,
		hellos:   make(chan *kubesvcv1.Hello, 16),
		received: make(chan *kubesvcv1.AgentMessage, 1<<16),
		acks:     make(chan uint64, 1<<16),
		control:  make(chan *kubesvcv1.ControlMessage, 1<<10),
	}
	// Registered first, so it runs after the server has stopped.
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, v := range d.violations {
			t.Errorf("control plane double: %s", v)
		}
	})
	serveAgentService(t, lis, d)
	return d
}

// serveAgentService serves impl on lis until the test ends; the cleanup
// stops the server and waits for Serve to return.
func serveAgentService(t *testing.T, lis net.Listener, impl kubesvcv1.AgentServiceServer) {
	t.Helper()
	srv := grpc.NewServer()
	kubesvcv1.RegisterAgentServiceServer(srv, impl)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
}

func (d *controlPlaneDouble) violate(format string, args ...any) {
	d.mu.Lock()
	d.violations = append(d.violations, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

func (d *controlPlaneDouble) Connect(stream grpc.BidiStreamingServer[kubesvcv1.AgentMessage, kubesvcv1.ControlMessage]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "first message is not a Hello")
	}
	d.hellos <- first.GetHello()
	answer := &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Welcome{Welcome: d.opts.welcome}}
	if d.opts.noWelcome {
		answer = &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Heartbeat{Heartbeat: &kubesvcv1.Heartbeat{}}}
	}
	if err := stream.Send(answer); err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if b := m.GetChanges(); b != nil {
				n := d.batches.Add(1)
				if outstanding := n - d.acksSent.Load(); outstanding > maxInflightBatches {
					d.violate("batch seq %d arrived with %d batches unacknowledged (max %d)", b.GetSeq(), outstanding, maxInflightBatches)
				}
				if uint64(n) != b.GetSeq() {
					d.violate("batch %d of the session has seq %d", n, b.GetSeq())
				}
				if d.opts.autoAck {
					d.acks <- b.GetSeq()
				}
			}
			d.received <- m
		}
	}()
	for {
		select {
		case seq := <-d.acks:
			d.acksSent.Add(1)
			if err := stream.Send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Ack{Ack: &kubesvcv1.BatchAck{Seq: seq}}}); err != nil {
				return err
			}
		case m := <-d.control:
			if err := stream.Send(m); err != nil {
				return err
			}
		case err := <-recvErr:
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// send makes the double send m to the agent.
func (d *controlPlaneDouble) send(m *kubesvcv1.ControlMessage) { d.control <- m }

// ack makes the double acknowledge seq.
func (d *controlPlaneDouble) ack(seq uint64) { d.acks <- seq }

// next returns the next message the agent sent after its Hello.
func (d *controlPlaneDouble) next(t *testing.T) *kubesvcv1.AgentMessage {
	t.Helper()
	m := d.tryNext()
	if m == nil {
		t.Fatal("control plane double: no message from the agent within 10s")
	}
	return m
}

// tryNext is next, returning nil after 10 s without a message.
func (d *controlPlaneDouble) tryNext() *kubesvcv1.AgentMessage {
	select {
	case m := <-d.received:
		return m
	case <-time.After(10 * time.Second):
		return nil
	}
}

func (d *controlPlaneDouble) hello(t *testing.T) *kubesvcv1.Hello {
	t.Helper()
	select {
	case h := <-d.hellos:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("control plane double: no Hello within 10s")
		return nil
	}
}

// dial returns a client of the double.
func (d *controlPlaneDouble) dial(t *testing.T) kubesvcv1.AgentServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return kubesvcv1.NewAgentServiceClient(conn)
}

// open opens a stream, says Hello and returns the stream once welcomed.
func (d *controlPlaneDouble) open(t *testing.T, ctx context.Context) kubesvcv1.AgentService_ConnectClient {
	t.Helper()
	stream, err := d.dial(t).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_Hello{Hello: &kubesvcv1.Hello{AgentId: "test-agent", Protocol: 1}}}); err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || m.GetWelcome() == nil {
		t.Fatalf("no welcome: %v %v", m, err)
	}
	d.hello(t)
	return stream
}
