package controlplane

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc/peer"
	"math"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/ident"
	"github.com/kubesvc/kubesvc/internal/store"
)

// session is one agent stream. Fields other than those documented as
// guarded are set before the session is registered and never change.
type session struct {
	id, agentID, zoneID, version string
	connectedAt                  time.Time
	// host is the agent's address without the port; replacedHost that of
	// the session this one replaced, if any (two agents sharing an id
	// replace each other from two hosts in turn). Set before, and by,
	// registry.add (under its lock).
	host, replacedHost string
	dynamicAccounts    bool // the agent accepts account commands
	cancel             context.CancelCauseFunc
	done               chan struct{}                  // closed when Connect returns
	out                chan *kubesvcv1.ControlMessage // drained by sendLoop
	bulk               chan *kubesvcv1.ControlMessage // likewise, after out: ProxyData

	pendingMu  sync.Mutex // guards pending, pendingOps, relays and closed
	pending    map[string]pendingCommand
	pendingOps map[string]chan *kubesvcv1.OperationResult
	relays     map[string]*relayed // Kubernetes API requests, by id
	// closed is set just before done is closed: results are no longer
	// handed to waiters (who may have seen done and given up), so they
	// are not acknowledged and the agent sends them again.
	closed bool

	// assignable: the agent caches only the accounts assigned to it.
	assignable bool
	// proxyRelays and proxyWrites: what the agent relays of the
	// Kubernetes API proxy (Hello).
	proxyRelays, proxyWrites bool

	// Guarded by registry.mu.
	lastSeen time.Time
	accounts map[string]*accountState
	assigned map[string]bool // accounts this session caches
}

var (
	errReplaced = errors.New("a newer session of the same agent replaced this one")
	errShutdown = errors.New("control plane shutting down")
)

// helloTimeout bounds the wait for an agent's first message.
const helloTimeout = 30 * time.Second

// Connect implements kubesvcv1.AgentServiceServer: it runs one agent's
// session until the stream ends, the agent goes silent for AgentTimeout, a
// newer session of the same agent replaces it, or the server stops.
func (s *Server) Connect(stream kubesvcv1.AgentService_ConnectServer) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)

	// The receive loop only moves messages from the stream to a channel:
	// stream.Recv cannot be interrupted except by ending the RPC, which
	// happens when this handler returns. Server.Run waits for it.
	// Buffered for the batches an agent may have in flight, so that the
	// receive loop keeps reading (proxied answers, operation results go
	// straight to their waiters) while a batch is being persisted.
	recvd := make(chan *kubesvcv1.AgentMessage, 16)
	recvErr := make(chan error, 1)
	in := &inbox{to: recvd}
	s.receivers.Go(func() { recvErr <- in.receive(ctx, stream) })

	var first *kubesvcv1.AgentMessage
	select {
	case first = <-recvd:
	case err := <-recvErr:
		return err
	case <-time.After(helloTimeout):
		return status.Errorf(codes.DeadlineExceeded, "no hello within %s", helloTimeout)
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	hello := first.GetHello()
	if err := validateHello(hello); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if refused := dropBadAccountNames(hello); len(refused) > 0 {
		// An agent of an older release (its configuration checked names
		// less strictly): its other accounts are served.
		s.log.Warn("agent accounts not served: their names cannot be cache keys or URL path segments; rename them in the agent's configuration",
			"agent", hello.GetAgentId(), "accounts", refused)
	}

	now := time.Now()
	sess := &session{
		id:          fmt.Sprintf("%s-%d", hello.GetAgentId(), now.UnixNano()),
		agentID:     hello.GetAgentId(),
		zoneID:      hello.GetZoneId(),
		version:     hello.GetVersion(),
		connectedAt: now,
		cancel:      cancel,
		done:        make(chan struct{}),
		out:         make(chan *kubesvcv1.ControlMessage, 16),
		bulk:        make(chan *kubesvcv1.ControlMessage, 16),
		pending:     map[string]pendingCommand{},
		pendingOps:  map[string]chan *kubesvcv1.OperationResult{},
		relays:      map[string]*relayed{},

		dynamicAccounts: hello.GetDynamicAccountsEnabled(),
		assignable:      hello.GetAssignable(),
		proxyRelays:     hello.GetProxyRelays(),
		proxyWrites:     hello.GetProxyWrites(),
		lastSeen:        now,
		accounts:        map[string]*accountState{},
		host:            peerHost(ctx),
	}
	in.proxy.Store(sess)
	defer func() {
		sess.pendingMu.Lock()
		sess.closed = true
		sess.pendingMu.Unlock()
		close(sess.done)
	}()
	names := make([]string, 0, len(hello.GetAccounts()))
	for _, a := range hello.GetAccounts() {
		names = append(names, a.GetName())
		sess.accounts[a.GetName()] = &accountState{info: a, state: kubesvcv1.AccountStatus_SYNCING, updated: now}
	}
	log := s.log.With("agent", sess.agentID, "session", sess.id)

	// A newer session replaces an older one of the same agent, which must
	// be gone before this one reads what to resume from.
	replaced, turns := s.registry.add(sess)
	// Removed however this ends, even while waiting for the replaced
	// session: a registered session is one the agent can be reached by.
	defer func() {
		s.registry.remove(sess)
		s.signalAgents()
	}()
	if replaced != nil {
		if turns {
			log.Warn("two agents use this agent id: their sessions replace each other in turn, and each drops the other's accounts from the cache; give each agent its own agent.id",
				"addresses", []string{replaced.host, sess.host})
		}
		replaced.cancel(errReplaced)
		select {
		case <-replaced.done:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	// No signal to the reconciler before admit: the registry shows the
	// agent's accounts before the database does, and a decision taken in
	// between (an ORPHANED account moved to another agent) would be wrong.

	if err := s.forgetDroppedAccounts(ctx, sess.agentID, names); err != nil {
		log.Error("reconcile the agent's accounts", "err", err)
		return status.Error(codes.Unavailable, "control plane cannot update its cache")
	}
	assigned, err := s.admit(ctx, sess, names)
	if err != nil {
		log.Error("record the session in the cluster", "err", err)
		return status.Error(codes.Unavailable, "control plane cannot record the session")
	}
	defer s.leave(sess)
	// Recorded: the dynamic-accounts reconciler, which judges agents by
	// the recorded sessions (ClusterAgents), can act on it now.
	s.signalAgents()
	// An assignable agent resumes the streams of the accounts it caches;
	// it gets the others' positions if they are assigned to it later.
	resumed := names
	if sess.assignable {
		resumed = assigned
	}
	var streams []store.ResumePoint
	if len(resumed) > 0 {
		if streams, err = s.store.Streams(ctx, resumed); err != nil {
			log.Error("load resume points", "err", err)
			return status.Error(codes.Unavailable, "control plane cannot read its cache")
		}
	}
	log.Info("agent connected", "zone", sess.zoneID, "version", sess.version, "accounts", len(names), "assigned", len(assigned), "streams", len(streams))
	s.metrics.sessions.Inc()
	defer s.metrics.sessions.Dec()

	if err := stream.Send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Welcome{Welcome: &kubesvcv1.Welcome{
		SessionId:      sess.id,
		ControlplaneId: s.cfg.ID,
		ResumePoints:   resumePointsToProto(streams),
		MaxBatchBytes:  uint32(s.cfg.MaxRecvMsgBytes),

		Assigns:          sess.assignable,
		AssignedAccounts: assigned,
		AgentTimeoutMs:   uint32(min(s.cfg.AgentTimeout.Milliseconds(), math.MaxUint32)),
	}}}); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	snd := &sender{stream: stream}
	in.deliver(func(res *kubesvcv1.OperationResult) bool {
		if !sess.deliverOperation(res) {
			return false
		}
		s.registry.touch(sess, time.Now())
		// When the ack cannot be sent the stream is broken (Recv fails
		// next); the agent sends the result again on its next session.
		_ = snd.send(resultAck(res))
		return true
	})
	g.Go(func() error { return sendLoop(gctx, snd, sess.out, sess.bulk) })
	g.Go(func() error { return s.handleLoop(gctx, sess, recvd, recvErr, snd) })
	err = g.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	log.Info("agent disconnected", "reason", err)
	switch {
	case errors.Is(err, errReplaced), errors.Is(err, errShutdown):
		return status.Error(codes.Aborted, err.Error())
	case status.Code(err) != codes.Unknown:
		return err
	default:
		return status.Error(codes.Unavailable, err.Error())
	}
}

// forgetDroppedAccounts records the accounts an agent serves now and drops
// from the cache those it served before and no longer does (removed from
// its configuration while it was away), unless another connected agent
// serves them.
func (s *Server) forgetDroppedAccounts(ctx context.Context, agentID string, now []string) error {
	before, err := s.store.AgentAccounts(ctx, agentID)
	if err != nil {
		return err
	}
	for _, account := range before {
		if slices.Contains(now, account) {
			continue
		}
		if others, err := s.servedByOthers(ctx, account, agentID); err != nil || others {
			if err != nil {
				return err
			}
			continue
		}
		s.log.Info("agent no longer serves the account; dropping it from the cache", "agent", agentID, "account", account)
		if err := s.store.DeleteAccount(ctx, account); err != nil {
			return err
		}
	}
	return s.store.SetAgentAccounts(ctx, agentID, now)
}

// takingTurns reports whether next, replacing prev, comes from the host
// prev itself replaced: two agents with one id, reconnecting in turn.
func takingTurns(prev, next *session) bool {
	return next.host != "" && prev.host != next.host && prev.replacedHost == next.host
}

// peerHost is the gRPC client's address without its port ("" if unknown).
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return h
	}
	return p.Addr.String()
}

func validateHello(h *kubesvcv1.Hello) error {
	if h == nil {
		return errors.New("the first message must be a hello")
	}
	if err := ident.AgentID(h.GetAgentId()); err != nil {
		return fmt.Errorf("hello.agent_id: %w", err)
	}
	if len(h.GetVersion()) > 253 {
		return errors.New("hello.version: longer than 253 bytes")
	}
	seen := map[string]bool{}
	for i, a := range h.GetAccounts() {
		if a.GetName() == "" {
			return fmt.Errorf("hello.accounts[%d].name: required", i)
		}
		if seen[a.GetName()] {
			return fmt.Errorf("hello.accounts[%d].name: duplicate account %q", i, a.GetName())
		}
		seen[a.GetName()] = true
	}
	return nil
}

// dropBadAccountNames removes from h the accounts whose names break the
// rules of ident.Account, and returns what each was refused for.
func dropBadAccountNames(h *kubesvcv1.Hello) (refused []string) {
	kept := h.Accounts[:0]
	for _, a := range h.GetAccounts() {
		if err := ident.Account(a.GetName()); err != nil {
			refused = append(refused, err.Error())
			continue
		}
		kept = append(kept, a)
	}
	h.Accounts = kept
	return refused
}

// inbox moves what an agent sends from its stream to the session's handle
// loop, in order, except the results of operations a SendOperation of this
// replica waits for: those are handed to their waiter (and acknowledged)
// at once rather than behind the change batches being persisted, once the
// session installed its deliver function. The waiter does not need the
// batches ahead of the result: it waits for the cache to reflect the
// objects the result names.
type inbox struct {
	to   chan<- *kubesvcv1.AgentMessage
	fast atomic.Pointer[func(*kubesvcv1.OperationResult) bool]
	// proxy takes the parts of relayed answers (never behind batches).
	proxy atomic.Pointer[session]
}

// deliver installs f, which reports whether it took a result.
func (in *inbox) deliver(f func(*kubesvcv1.OperationResult) bool) { in.fast.Store(&f) }

func (in *inbox) receive(ctx context.Context, stream kubesvcv1.AgentService_ConnectServer) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		if res := m.GetOperationResult(); res != nil {
			if f := in.fast.Load(); f != nil && (*f)(res) {
				continue
			}
		}
		if f := m.GetProxyResponse(); f != nil {
			if sess := in.proxy.Load(); sess != nil && !sess.deliverProxy(f) && !f.GetEnd() {
				// The request is over here (its client left, or the
				// agent overran its window): stop the agent's too, in
				// case the cancel sent then was lost. Never waits.
				select {
				case sess.out <- proxyCancel(f.GetId()):
				default:
				}
			}
			continue
		}
		select {
		case in.to <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sender serialises the sends of one stream: the send loop's and the
// acks, which the handle loop sends itself rather than hand each one to
// the send loop (one goroutine wake-up less per batch).
type sender struct {
	mu     sync.Mutex
	stream kubesvcv1.AgentService_ConnectServer
}

func (s *sender) send(m *kubesvcv1.ControlMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.Send(m)
}

// sendLoop sends what is queued for the agent: out first, bulk (the
// client bytes of upgraded proxy requests) when out is empty, so that
// operations, commands and assignments never wait behind them.
func sendLoop(ctx context.Context, snd *sender, out, bulk <-chan *kubesvcv1.ControlMessage) error {
	for {
		var m *kubesvcv1.ControlMessage
		select {
		case m = <-out:
		default:
			select {
			case m = <-out:
			case m = <-bulk:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := snd.send(m); err != nil {
			return err
		}
	}
}

// handleLoop applies what the agent sends, acknowledges batches once they
// are persisted, and drops the session when the agent goes silent.
func (s *Server) handleLoop(ctx context.Context, sess *session, recvd <-chan *kubesvcv1.AgentMessage, recvErr <-chan error, snd *sender) error {
	out := sess.out
	check := time.NewTicker(min(s.cfg.AgentTimeout/3, 10*time.Second))
	defer check.Stop()
	send := func(m *kubesvcv1.ControlMessage) error {
		select {
		case out <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			return err
		case now := <-check.C:
			if idle := now.Sub(s.registry.lastSeen(sess)); idle > s.cfg.AgentTimeout {
				return status.Errorf(codes.DeadlineExceeded, "agent silent for %s", idle.Round(time.Second))
			}
		case m := <-recvd:
			s.registry.touch(sess, time.Now())
			switch msg := m.GetMsg().(type) {
			case *kubesvcv1.AgentMessage_Changes:
				if err := s.ingest(ctx, sess, msg.Changes); err != nil {
					return err
				}
				if err := snd.send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Ack{Ack: &kubesvcv1.BatchAck{Seq: msg.Changes.GetSeq()}}}); err != nil {
					return err
				}
			case *kubesvcv1.AgentMessage_AccountStatus:
				if err := s.accountStatus(ctx, sess, msg.AccountStatus); err != nil {
					return err
				}
			case *kubesvcv1.AgentMessage_Heartbeat:
				if err := send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Heartbeat{Heartbeat: &kubesvcv1.Heartbeat{SentAtMs: time.Now().UnixMilli()}}}); err != nil {
					return err
				}
			case *kubesvcv1.AgentMessage_AccountCommandResult:
				// Accounts the agent just took are served from now on:
				// record them before the waiter sees the result, so the
				// account is never ACTIVE without a holder.
				if sess.isAdd(msg.AccountCommandResult.GetId()) {
					changed := false
					var taken []string
					for _, r := range msg.AccountCommandResult.GetResults() {
						if r.GetSuccess() {
							st := &kubesvcv1.AccountStatus{Account: r.GetName(), State: kubesvcv1.AccountStatus_SYNCING, Info: r.GetInfo()}
							changed = s.registry.addAccount(sess, st) || changed
							taken = append(taken, r.GetName())
						}
					}
					if changed {
						if err := s.recordAgentAccounts(ctx, sess); err != nil {
							return err
						}
					}
					if len(taken) > 0 {
						if err := s.claimTaken(ctx, sess, taken); err != nil {
							s.log.Error("record the accounts the agent took", "agent", sess.agentID, "err", err)
							return status.Error(codes.Unavailable, "control plane cannot record the agent's accounts")
						}
					}
				}
				sess.deliver(msg.AccountCommandResult)
			case *kubesvcv1.AgentMessage_OperationResult:
				if ack := s.operationResult(ctx, sess, msg.OperationResult); ack != nil {
					if err := send(ack); err != nil {
						return err
					}
				}
			case *kubesvcv1.AgentMessage_Hello:
				return status.Error(codes.InvalidArgument, "hello sent twice on one stream")
			default:
				s.log.Warn("ignoring agent message", "agent", sess.agentID, "type", fmt.Sprintf("%T", msg))
			}
		}
	}
}

// ingest persists one batch. A batch that cannot be decoded ends the
// session with InvalidArgument; a store failure ends it with Unavailable so
// that the agent reconnects and resumes from what was persisted.
func (s *Server) ingest(ctx context.Context, sess *session, b *kubesvcv1.ChangeBatch) error {
	changes, err := changesFromProto(b.GetChanges())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "batch %d: %v", b.GetSeq(), err)
	}
	changes = s.ownChanges(sess, changes)
	changes = s.storable(sess, changes)
	start := time.Now()
	if err := s.store.ApplyChangesFenced(ctx, store.Fence{AgentID: sess.agentID, SessionID: sess.id}, changes); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, store.ErrInvalidChange) {
			return status.Errorf(codes.InvalidArgument, "batch %d: %v", b.GetSeq(), err)
		}
		if errors.Is(err, store.ErrFenced) {
			// The agent has a newer session (on this or another replica):
			// this one is over, and must not write behind it.
			return status.Errorf(codes.Aborted, "batch %d: %v", b.GetSeq(), err)
		}
		s.log.Error("persist batch", "seq", b.GetSeq(), "changes", len(changes), "err", err)
		return status.Error(codes.Unavailable, "control plane cannot persist the batch")
	}
	s.commits.publish(changes)
	// Readers the commit woke run first, before the ack and the next batch.
	runtime.Gosched()
	s.metrics.observeBatch(len(changes), time.Since(start))
	return nil
}

// storable drops the changes no backend can store (store.Fit): a name
// longer than 253 bytes or not ASCII. Failing the batch instead would end
// the session, and the agent would send the same batch again for ever.
func (s *Server) storable(sess *session, changes []store.Change) []store.Change {
	kept := changes[:0]
	for i := range changes {
		if err := store.Fit(&changes[i]); err != nil {
			s.metrics.droppedChanges.Inc()
			s.log.Warn("change left out of the cache: it cannot be stored", "agent", sess.agentID,
				"account", changes[i].Stream.Account, "kind", changes[i].Stream.Resource.Kind, "err", err)
			continue
		}
		kept = append(kept, changes[i])
	}
	return kept
}

func (s *Server) accountStatus(ctx context.Context, sess *session, st *kubesvcv1.AccountStatus) error {
	if st.GetAccount() == "" {
		return status.Error(codes.InvalidArgument, "account_status.account: required")
	}
	if !s.registry.setAccount(sess, st) {
		return nil
	}
	// The set of accounts the agent serves changed: record it, and drop a
	// removed account from the cache unless another agent serves it.
	if err := s.recordAgentAccounts(ctx, sess); err != nil {
		return err
	}
	if st.GetState() == kubesvcv1.AccountStatus_REMOVED && s.dropRemoved(ctx, sess, st.GetAccount()) {
		if err := s.store.DeleteAccount(ctx, st.GetAccount()); err != nil {
			s.log.Error("drop removed account from cache", "account", st.GetAccount(), "err", err)
			return status.Error(codes.Unavailable, "control plane cannot update its cache")
		}
		s.commits.publishAll()
	}
	return nil
}

// recordAgentAccounts persists the accounts the session's agent serves and
// tells the dynamic-accounts reconciler.
func (s *Server) recordAgentAccounts(ctx context.Context, sess *session) error {
	// Signalled once recorded: the reconciler reads them from the store
	// (ClusterAgents).
	defer s.signalAgents()
	defer s.pokeAssigner()
	if err := s.store.SetAgentAccounts(ctx, sess.agentID, s.registry.accountNames(sess)); err != nil {
		s.log.Error("record the agent's accounts", "agent", sess.agentID, "err", err)
		return status.Error(codes.Unavailable, "control plane cannot update its cache")
	}
	return nil
}
