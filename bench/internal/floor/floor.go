// Package floor is the FLOOR of the agent + control plane architecture, for
// the benchmarks' -floor option: a lower bound, not a product path.
//
// It keeps the architecture's process split and hops and drops everything
// else: no persistence, no batching, no retries, no checks, no logic. A
// "floor agent" process talks to the API server with client-go and dials out
// to a "floor server" process over one gRPC bidi stream (insecure loopback,
// a hand-written service whose messages are wrapperspb.BytesValue, fixed
// flow-control windows as in the product); the floor server answers HTTP.
//
//   - Propagation (watch-agent, read-server): the agent watches one
//     namespace's ConfigMaps (typed clientset, protobuf, a plain watch) and
//     sends each event's name, resourceVersion and object (its protobuf
//     encoding) up the stream, one message per event; the server keeps them
//     in a map and answers GET /objects/NAME?waitMs=MS[&minResourceVersion=RV]
//     when the object is there (the waiting reader of bench/propagation).
//   - Operations (apply-server, apply-agent): POST /deploy with a JSON array
//     of ConfigMap manifests is sent down the stream; the agent applies them
//     one by one as bench/operations' direct path does (dynamic client,
//     server-side apply, field manager "bench", force) and sends the outcome
//     up; the POST answers with it.
//
// Both processes are the bench/floor binary, built and started by the
// benchmark (Build, StartPropagation, StartOperations) like the real agent
// and control plane.
package floor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

// window is the fixed flow-control window of both ends (the product's
// agent uses 1 MiB too): no BDP pings.
const window = 1 << 20

// relay is the one bidi stream of the hand-written service; both directions
// carry wrapperspb.BytesValue.
var relay = grpc.ServiceDesc{
	ServiceName: "kubesvc.bench.floor.Relay",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName: "Relay", ServerStreams: true, ClientStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error { return srv.(streamHandler)(stream) },
	}},
}

type streamHandler func(grpc.ServerStream) error

// serve runs a gRPC server on grpcAddr whose Relay stream is handled by h,
// and an HTTP server on httpAddr; it returns when either fails.
func serve(grpcAddr, httpAddr string, h streamHandler, mux *http.ServeMux) error {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(grpc.StaticStreamWindowSize(window), grpc.StaticConnWindowSize(window))
	gs.RegisterService(&relay, h)
	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(gl) }()
	go func() { errc <- http.ListenAndServe(httpAddr, mux) }()
	return <-errc
}

// dial opens the agent's one stream to the server.
func dial(ctx context.Context, addr string) (grpc.ClientStream, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStaticStreamWindowSize(window), grpc.WithStaticConnWindowSize(window))
	if err != nil {
		return nil, err
	}
	// Wait for the server: both processes start at the same time.
	return conn.NewStream(ctx, &relay.Streams[0], "/"+relay.ServiceName+"/"+relay.Streams[0].StreamName, grpc.WaitForReady(true))
}

func recv(s interface{ RecvMsg(any) error }) ([]byte, error) {
	m := new(wrapperspb.BytesValue)
	if err := s.RecvMsg(m); err != nil {
		return nil, err
	}
	return m.Value, nil
}

func send(s interface{ SendMsg(any) error }, b []byte) error {
	return s.SendMsg(wrapperspb.Bytes(b))
}

// Main runs the role named by args[0] with the rest of args as its flags.
func Main(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: floor watch-agent|read-server|apply-agent|apply-server FLAGS")
	}
	switch args[0] {
	case "watch-agent":
		return watchAgentMain(args[1:])
	case "read-server":
		return readServerMain(args[1:])
	case "apply-agent":
		return applyAgentMain(args[1:])
	case "apply-server":
		return applyServerMain(args[1:])
	}
	return fmt.Errorf("unknown role %q", args[0])
}

// Build builds the floor binary into dir and returns its path.
func Build(dir string) (string, error) {
	fmt.Println("building the floor binary ...")
	if err := benchproc.Build(dir, "./bench/floor"); err != nil {
		return "", err
	}
	return filepath.Join(dir, "floor"), nil
}

// Pair is a running floor server and floor agent.
type Pair struct {
	// HTTP is the floor server's base URL.
	HTTP          string
	Server, Agent *benchproc.Process
}

// start runs bin's serverRole and agentRole (agentArgs after the server's
// address) and waits until the server's /health answers 200: its agent's
// stream is open (and, for the watch agent, its first list is in).
func start(bin, serverRole, agentRole string, agentArgs ...string) (*Pair, error) {
	gp, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	hp, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	grpcAddr, httpAddr := fmt.Sprintf("127.0.0.1:%d", gp), fmt.Sprintf("127.0.0.1:%d", hp)
	p := &Pair{HTTP: "http://" + httpAddr}
	if p.Server, err = benchproc.Start(bin, serverRole, "-grpc", grpcAddr, "-http", httpAddr); err != nil {
		return nil, err
	}
	if p.Agent, err = benchproc.Start(bin, append([]string{agentRole, "-server", grpcAddr}, agentArgs...)...); err != nil {
		p.Stop()
		return nil, err
	}
	if err := benchproc.WaitFor(time.Minute, func() bool {
		resp, err := http.Get(p.HTTP + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		p.Stop()
		return nil, fmt.Errorf("floor %s/%s not ready: %w", serverRole, agentRole, err)
	}
	return p, nil
}

// StartPropagation runs a floor read server and a floor watch agent on the
// ConfigMaps of namespace.
func StartPropagation(bin, kubeconfig, namespace string) (*Pair, error) {
	return start(bin, "read-server", "watch-agent", "-kubeconfig", kubeconfig, "-namespace", namespace)
}

// StartOperations runs a floor apply server and a floor apply agent.
func StartOperations(bin, kubeconfig string) (*Pair, error) {
	return start(bin, "apply-server", "apply-agent", "-kubeconfig", kubeconfig)
}

// CPU is the CPU time the server and the agent have used so far.
func (p *Pair) CPU() (server, agent time.Duration) {
	server, _ = p.Server.CPUTime()
	agent, _ = p.Agent.CPUTime()
	return server, agent
}

// Stop stops both processes.
func (p *Pair) Stop() {
	if p.Agent != nil {
		p.Agent.Stop()
	}
	if p.Server != nil {
		p.Server.Stop()
	}
}
