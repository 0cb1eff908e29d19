package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

const (
	// maxInflightBatches is how many batches may await acknowledgement.
	maxInflightBatches = 8
	// maxBatchChanges caps the changes of one batch.
	maxBatchChanges = 1000
	// defaultMaxBatchBytes applies when the control plane states no limit.
	defaultMaxBatchBytes = 4 << 20
	// queueLen is the number of changes that may wait for the sender; it
	// bounds the agent's memory together with the list page size.
	queueLen = 2048
)

// item is one thing for the sender, in order: a change to batch or a
// message to send as is (status, heartbeat).
type item struct {
	change *kubesvcv1.Change
	msg    *kubesvcv1.AgentMessage
}

// session is one connection to the control plane as seen by the agent's
// account and stream runners.
type session struct {
	agent  *Agent
	out    chan item
	resume map[string]*kubesvcv1.ResumePoint
}

func (s *session) emit(ctx context.Context, c *kubesvcv1.Change) error {
	select {
	case s.out <- item{change: c}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) status(ctx context.Context, st *kubesvcv1.AccountStatus) {
	select {
	case s.out <- item{msg: &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_AccountStatus{AccountStatus: st}}}:
	case <-ctx.Done():
	}
}

// resumeVersion returns the resource version to resume a stream from, or
// "" when the control plane has none younger than maxAge (0: never resume).
func (s *session) resumeVersion(k *kubesvcv1.StreamKey, maxAge time.Duration) string {
	rp := s.resume[streamID(k)]
	if rp == nil || rp.GetResourceVersion() == "" {
		return ""
	}
	if maxAge <= 0 || time.Since(time.UnixMilli(rp.GetUpdatedAtMs())) > maxAge {
		return ""
	}
	return rp.GetResourceVersion()
}

func (a *Agent) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if a.cfg.TLS != nil {
		creds = credentials.NewTLS(a.cfg.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: a.cfg.Backoff.BaseDelay, Multiplier: a.cfg.Backoff.Multiplier,
				Jitter: a.cfg.Backoff.Jitter, MaxDelay: a.cfg.Backoff.MaxDelay,
			},
			MinConnectTimeout: 20 * time.Second,
		}),
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
		welcomed, err := a.runSession(ctx, client)
		a.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if welcomed {
			a.stats.Disconnects.Add(1)
			attempt = 0
		}
		attempt++
		d := a.backoffDelay(attempt)
		a.log.Warn("no session with the control plane", "target", a.cfg.Target, "err", err, "retryIn", d.Round(time.Millisecond))
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

// runSession runs one stream: hello, welcome, then streaming until the
// stream fails or ctx ends. welcomed reports whether the control plane
// accepted the session.
func (a *Agent) runSession(ctx context.Context, client kubesvcv1.AgentServiceClient) (welcomed bool, _ error) {
	g, gctx := errgroup.WithContext(ctx)
	stream, err := client.Connect(gctx, grpc.WaitForReady(false))
	if err != nil {
		return false, err
	}
	if err := stream.Send(&kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_Hello{Hello: a.hello()}}); err != nil {
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
	a.stats.Connects.Add(1)
	a.setConnected(true)
	a.log.Info("connected to the control plane", "controlplane", welcome.GetControlplaneId(), "session", welcome.GetSessionId(), "resumePoints", len(welcome.GetResumePoints()))

	s := &session{agent: a, out: make(chan item, queueLen), resume: map[string]*kubesvcv1.ResumePoint{}}
	for _, rp := range welcome.GetResumePoints() {
		s.resume[streamID(rp.GetStream())] = rp
	}
	maxBytes := int(welcome.GetMaxBatchBytes()) / 2
	if maxBytes <= 0 || maxBytes > defaultMaxBatchBytes {
		maxBytes = defaultMaxBatchBytes
	}
	window := make(chan struct{}, maxInflightBatches)
	g.Go(func() error { return a.sendLoop(gctx, stream, s.out, window, maxBytes) })
	g.Go(func() error { return receiveLoop(stream, window) })
	g.Go(func() error { return s.manageAccounts(gctx) })
	if a.cfg.KeepaliveTime > 0 {
		g.Go(func() error { return s.heartbeat(gctx, a.cfg.KeepaliveTime) })
	}
	return true, g.Wait()
}

// sendLoop batches consecutive changes and sends messages in queue order,
// never more than maxInflightBatches unacknowledged batches at once.
func (a *Agent) sendLoop(ctx context.Context, stream kubesvcv1.AgentService_ConnectClient, in <-chan item, window chan struct{}, maxBytes int) error {
	var (
		seq     uint64
		pending *item // an item taken from in but not yet sent
	)
	for {
		var it item
		if pending != nil {
			it, pending = *pending, nil
		} else {
			select {
			case it = <-in:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if it.msg != nil {
			if err := stream.Send(it.msg); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			continue
		}
		batch := &kubesvcv1.ChangeBatch{Changes: []*kubesvcv1.Change{it.change}}
		size := proto.Size(it.change)
	fill:
		for len(batch.Changes) < maxBatchChanges && size < maxBytes {
			select {
			case next := <-in:
				if next.msg != nil {
					pending = &next
					break fill
				}
				batch.Changes = append(batch.Changes, next.change)
				size += proto.Size(next.change)
			default:
				break fill
			}
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		seq++
		batch.Seq = seq
		if err := stream.Send(&kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_Changes{Changes: batch}}); err != nil {
			return fmt.Errorf("send batch %d: %w", seq, err)
		}
		a.stats.Batches.Add(1)
		a.stats.Changes.Add(int64(len(batch.Changes)))
		a.stats.BatchBytes.Add(int64(size))
	}
}

// receiveLoop handles what the control plane sends: acknowledgements free
// window slots. The stream's context ends it.
func receiveLoop(stream kubesvcv1.AgentService_ConnectClient, window chan struct{}) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		switch m.GetMsg().(type) {
		case *kubesvcv1.ControlMessage_Ack:
			select {
			case <-window:
			default:
				return errors.New("control plane acknowledged a batch that was not sent")
			}
		case *kubesvcv1.ControlMessage_Heartbeat:
		}
	}
}

func (s *session) heartbeat(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			select {
			case s.out <- item{msg: &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_Heartbeat{Heartbeat: &kubesvcv1.Heartbeat{SentAtMs: now.UnixMilli()}}}}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

type runningAccount struct {
	acct   Account
	cancel context.CancelFunc
	done   chan struct{}
}

// manageAccounts runs an accountRunner per account and follows account
// changes: removed accounts stop and are reported REMOVED; changed ones
// restart.
func (s *session) manageAccounts(ctx context.Context) error {
	a := s.agent
	total := make(chan struct{}, a.cfg.TotalBudget)
	running := map[string]*runningAccount{}
	var wg sync.WaitGroup
	defer func() {
		for _, ra := range running {
			ra.cancel()
		}
		wg.Wait()
	}()
	for {
		desired := a.snapshot()
		for name, ra := range running {
			if d, ok := desired[name]; ok && d.equal(ra.acct) {
				continue
			}
			ra.cancel()
			<-ra.done
			delete(running, name)
			a.log.Info("account stopped", "account", name)
			s.status(ctx, &kubesvcv1.AccountStatus{Account: name, State: kubesvcv1.AccountStatus_REMOVED})
		}
		for name, acct := range desired {
			if _, ok := running[name]; ok {
				continue
			}
			actx, cancel := context.WithCancel(ctx)
			ra := &runningAccount{acct: acct, cancel: cancel, done: make(chan struct{})}
			running[name] = ra
			r := &accountRunner{acct: acct, sess: s, budget: newBudget(total, a.cfg.BudgetPerAccount), log: a.log.With("account", name)}
			wg.Go(func() {
				defer close(ra.done)
				_ = r.run(actx)
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.changed:
		}
	}
}
