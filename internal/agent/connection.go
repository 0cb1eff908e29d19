package agent

// The connection to the control plane: dialing, reconnecting with backoff,
// and one session per stream (session.go runs its loops).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// connectHint names the usual cause of a failure to connect, "" when it
// has none: TLS on one end only shows as a broken HTTP/2 handshake.
func connectHint(err error, tls bool) string {
	msg := err.Error()
	switch {
	case !tls && (strings.Contains(msg, "error reading server preface") || strings.Contains(msg, "connection reset by peer")):
		return "the control plane may require TLS: set clouddriver.insecure: false (and clouddriver.tls.* as needed)"
	case tls && (strings.Contains(msg, "first record does not look like a TLS handshake") || strings.Contains(msg, "tls: ") && strings.Contains(msg, "record")):
		return "the control plane may not serve TLS: set clouddriver.insecure: true, or enable kubesvc.grpc.server.security on it"
	case strings.Contains(msg, "produced zero addresses") || strings.Contains(msg, "no such host"):
		// gRPC's DNS resolver says "name resolver error: produced zero
		// addresses" for a host that does not resolve.
		return "the host of clouddriver.grpc does not resolve: check its spelling, and that this pod or host can resolve it"
	}
	return ""
}

// dialOptions configure the connection: TLS or plaintext, fixed flow-control
// windows, the documented reconnect backoff, the proxy setting, per-call
// credentials and keepalive pings.
func (a *Agent) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if a.cfg.TLS != nil {
		creds = credentials.NewTLS(a.cfg.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStaticStreamWindowSize(recvWindow), grpc.WithStaticConnWindowSize(recvWindow),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: a.cfg.Backoff.BaseDelay, Multiplier: a.cfg.Backoff.Multiplier,
				Jitter: a.cfg.Backoff.Jitter, MaxDelay: a.cfg.Backoff.MaxDelay,
			},
			MinConnectTimeout: 20 * time.Second,
		}),
	}
	if a.cfg.NoProxy {
		opts = append(opts, grpc.WithNoProxy())
	}
	if a.cfg.Auth != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(a.cfg.Auth))
	}
	if a.cfg.KeepaliveTime > 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: a.cfg.KeepaliveTime, Timeout: a.cfg.KeepaliveTimeout, PermitWithoutStream: true,
		}))
	}
	return opts
}

// connectionLoop keeps a session with the control plane up, reconnecting
// with the configured backoff.
func (a *Agent) connectionLoop(ctx context.Context) error {
	conn, err := grpc.NewClient(a.cfg.Target, a.dialOptions()...)
	if err != nil {
		return fmt.Errorf("agent: control plane address %q: %w", a.cfg.Target, err)
	}
	defer conn.Close()
	client := kubesvcv1.NewAgentServiceClient(conn)
	attempt := 0
	for {
		healthy, err := a.runSession(ctx, client)
		wasConnected := a.Connected()
		a.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if wasConnected {
			a.stats.Disconnects.Add(1)
		}
		if healthy {
			attempt = 0
		}
		if inv, ok := a.cfg.Auth.(interface{ Invalidate() }); ok && status.Code(err) == codes.Unauthenticated {
			// A token refused is not sent again: the command runs for a
			// new one, whatever refreshIntervalSeconds says.
			inv.Invalidate()
		}
		attempt++
		d := a.backoffDelay(attempt)
		args := []any{"target", a.cfg.Target, "err", err, "retryIn", d.Round(time.Millisecond)}
		if h := connectHint(err, a.cfg.TLS != nil); h != "" {
			args = append(args, "hint", h)
		}
		a.log.Warn("no session with the control plane", args...)
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// backoffDelay follows gRPC's exponential backoff with the configured
// base, multiplier, jitter and cap.
func (a *Agent) backoffDelay(attempt int) time.Duration {
	b := a.cfg.Backoff
	d := float64(b.BaseDelay) * math.Pow(b.Multiplier, float64(attempt-1))
	d = min(d, float64(b.MaxDelay))
	d *= 1 + b.Jitter*(rand.Float64()*2-1)
	return time.Duration(max(d, 0))
}

// healthySession is how long a session must last for the reconnect
// backoff to start again from its base delay.
const healthySession = 30 * time.Second

// runSession runs one stream: hello, welcome, then streaming until the
// stream fails or ctx ends. healthy reports whether the control plane
// accepted the session and it lasted healthySession.
func (a *Agent) runSession(ctx context.Context, client kubesvcv1.AgentServiceClient) (healthy bool, _ error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Connect(ctx, grpc.WaitForReady(false))
	if err != nil {
		return false, err
	}
	if err := stream.Send(&kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_Hello{Hello: a.hello()}}); err != nil {
		// The stream's status explains a failed send better than EOF.
		if _, rerr := stream.Recv(); rerr != nil {
			err = rerr
		}
		return false, fmt.Errorf("send hello: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return false, fmt.Errorf("await welcome: %w", err)
	}
	welcome := first.GetWelcome()
	if welcome == nil {
		return false, errors.New("control plane answered hello without a welcome")
	}
	start := time.Now()
	a.stats.Connects.Add(1)
	a.setConnected(true)
	a.log.Info("connected to the control plane", "controlplane", welcome.GetControlplaneId(), "session", welcome.GetSessionId(), "streams", len(welcome.GetResumePoints()))

	s := newSession(a, welcome)
	a.states.reset()
	limit := int(welcome.GetMaxBatchBytes())
	if limit <= 0 {
		limit = 2 * defaultMaxBatchBytes
	}
	err = s.run(ctx, cancel, stream, limit)
	return time.Since(start) >= healthySession, err
}
