package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

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
	// recvWindow is the fixed HTTP/2 flow-control window for what the
	// control plane sends. Fixed, because gRPC's dynamic window probes
	// with a ping round trip after every message received (every ack).
	recvWindow = 1 << 20
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
	agent *Agent
	out   chan item
	// prio carries the Kubernetes API proxy's answers ahead of out.
	prio chan *kubesvcv1.AgentMessage

	mu sync.Mutex // guards resume, known and watched
	// resume holds the Welcome's resume points by streamID; each is used
	// at most once (a restarted stream lists again).
	resume map[string]*kubesvcv1.ResumePoint
	// known is, per account, every stream the control plane holds: those
	// of the Welcome and those this session has sent since. A stream the
	// account no longer wants is removed from the control plane with
	// StreamRemoved.
	known map[string]map[string]*kubesvcv1.StreamKey
	// watched is, per stream, the resourceVersion of the last watch event,
	// bookmark or list end queued on this session: an object an operation
	// applied at that version or before is on its way already.
	watched map[string]string
	// assigned is what the control plane lets this session cache.
	assigned *assignment
	// proxies are the Kubernetes API requests being relayed.
	proxies proxies
	// heartbeat is how often the session sends a Heartbeat.
	heartbeat time.Duration
}

func newSession(a *Agent, welcome *kubesvcv1.Welcome) *session {
	s := &session{
		agent:     a,
		out:       make(chan item, queueLen),
		prio:      make(chan *kubesvcv1.AgentMessage, proxyQueueLen),
		heartbeat: heartbeatEvery(a.cfg.KeepaliveTime, time.Duration(welcome.GetAgentTimeoutMs())*time.Millisecond),
		resume:    map[string]*kubesvcv1.ResumePoint{},
		known:     map[string]map[string]*kubesvcv1.StreamKey{},

		assigned: newAssignment(welcome),
	}
	for _, rp := range welcome.GetResumePoints() {
		id := streamID(rp.GetStream())
		s.resume[id] = rp
		s.markKnown(id, rp.GetStream())
	}
	return s
}

func (s *session) markKnown(id string, k *kubesvcv1.StreamKey) {
	m := s.known[k.GetAccount()]
	if m == nil {
		m = map[string]*kubesvcv1.StreamKey{}
		s.known[k.GetAccount()] = m
	}
	m[id] = k
}

// emit queues a change for the control plane, keeping track of the
// streams it holds.
func (s *session) emit(ctx context.Context, c *kubesvcv1.Change) error {
	id := streamID(c.GetStream())
	s.mu.Lock()
	if c.GetStreamRemoved() != nil {
		// The control plane drops the stream's objects and position: a
		// later stream of the same key must relist, not resume.
		delete(s.known[c.GetStream().GetAccount()], id)
		delete(s.watched, id)
		delete(s.resume, id)
	} else {
		s.markKnown(id, c.GetStream())
	}
	s.mu.Unlock()
	select {
	case s.out <- item{change: c}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if rv := watchedVersion(c); rv != "" {
		s.mu.Lock()
		if s.watched == nil {
			s.watched = map[string]string{}
		}
		s.watched[id] = rv
		s.mu.Unlock()
	}
	return nil
}

// watchedVersion is the stream position a change moves to, "" for those
// that do not (list items come in no order; Applied changes are not the
// watch's).
func watchedVersion(c *kubesvcv1.Change) string {
	switch ch := c.GetChange().(type) {
	case *kubesvcv1.Change_Upserted:
		return ch.Upserted.GetResourceVersion()
	case *kubesvcv1.Change_Deleted:
		return ch.Deleted.GetResourceVersion()
	case *kubesvcv1.Change_Bookmark:
		return ch.Bookmark.GetResourceVersion()
	case *kubesvcv1.Change_SyncEnd:
		return ch.SyncEnd.GetResourceVersion()
	}
	return ""
}

// alreadyWatched reports whether the stream id queued a watch event at rv
// or later on this session (resourceVersions compared as etcd revisions;
// false when either is not one).
func (s *session) alreadyWatched(id, rv string) bool {
	s.mu.Lock()
	at := s.watched[id]
	s.mu.Unlock()
	a, err1 := strconv.ParseUint(at, 10, 64)
	b, err2 := strconv.ParseUint(rv, 10, 64)
	return err1 == nil && err2 == nil && a >= b
}

func (s *session) status(ctx context.Context, st *kubesvcv1.AccountStatus) {
	s.agent.states.set(st)
	select {
	case s.out <- item{msg: &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_AccountStatus{AccountStatus: st}}}:
	case <-ctx.Done():
	}
}

// takeResume returns the resource version to resume a stream from, or ""
// to list it: when the control plane has no position for it, the position
// is older than maxAge (0: never resume), was recorded for another version
// or selector, or was already used in this session.
func (s *session) takeResume(k *kubesvcv1.StreamKey, maxAge time.Duration) string {
	id := streamID(k)
	s.mu.Lock()
	rp := s.resume[id]
	delete(s.resume, id)
	s.mu.Unlock()
	if rp == nil || rp.GetResourceVersion() == "" || maxAge <= 0 {
		return ""
	}
	was := rp.GetStream()
	if was.GetResource().GetVersion() != k.GetResource().GetVersion() || was.GetSelectorHash() != k.GetSelectorHash() {
		return ""
	}
	if time.Since(time.UnixMilli(rp.GetUpdatedAtMs())) > maxAge {
		return ""
	}
	return rp.GetResourceVersion()
}

// knownStreams returns the streams the control plane holds for account.
func (s *session) knownStreams(account string) map[string]*kubesvcv1.StreamKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*kubesvcv1.StreamKey, len(s.known[account]))
	for id, k := range s.known[account] {
		out[id] = k
	}
	return out
}

// forgetAccount drops what the session knows of a removed account.
func (s *session) forgetAccount(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.known[account] {
		delete(s.watched, id)
	}
	delete(s.known, account)
	for id, rp := range s.resume {
		if rp.GetStream().GetAccount() == account {
			delete(s.resume, id)
		}
	}
}

// serverMoved forgets the positions of account's streams on its API
// server (resume points not used yet, the versions watched): it now
// reaches another, maybe another cluster. The streams the control plane
// holds stay known: those the new server does not serve are removed.
func (s *session) serverMoved(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.known[account] {
		delete(s.watched, id)
	}
	for id, rp := range s.resume {
		if rp.GetStream().GetAccount() == account {
			delete(s.resume, id)
		}
	}
}

// run runs the session's loops on stream until one of them ends it, and
// returns that one's error. endStream ends the stream (cancels its
// context), so that a loop blocked in Recv or Send returns too.
func (s *session) run(ctx context.Context, endStream context.CancelFunc, stream kubesvcv1.AgentService_ConnectClient, limit int) error {
	a := s.agent
	window := make(chan struct{}, maxInflightBatches)
	in := newInboxes()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-gctx.Done()
		endStream()
		return nil
	})
	g.Go(func() error { return a.sendLoop(gctx, stream, s.out, s.prio, window, limit) })
	g.Go(func() error { return s.receiveLoop(gctx, stream, window, in) })
	g.Go(func() error { return s.commandLoop(gctx, in.cmds) })
	g.Go(func() error { return s.operationLoop(gctx, in.ops) })
	g.Go(func() error { return s.proxyLoop(gctx, in.relays) })
	g.Go(func() error { return s.manageAccounts(gctx) })
	g.Go(func() error { return s.sendHeartbeats(gctx) })
	return g.Wait()
}

// heartbeatEvery is the application heartbeat interval: the gRPC keepalive
// interval (clouddriver.keepAliveHeartbeatSeconds), or 20 s when keepalive
// pings are off, and never more than a third of the time the control plane
// waits before dropping a silent agent (timeout, from its Welcome; 0 when
// it did not say). gRPC pings do not count as activity there, so
// heartbeats are never off.
func heartbeatEvery(keepalive, timeout time.Duration) time.Duration {
	every := 20 * time.Second
	if keepalive > 0 {
		every = keepalive
	}
	if timeout > 0 {
		every = min(every, max(timeout/3, time.Second))
	}
	return every
}

// receiveLoop handles what the control plane sends: acknowledgements free
// window slots, account commands go to the command loop, operations to the
// operation loop, proxied requests to the proxy loop (through inboxes: it
// never waits for them), proxy windows and cancels to their requests, assignments
// change what is cached. The stream's context ends it.
func (s *session) receiveLoop(ctx context.Context, stream kubesvcv1.AgentService_ConnectClient, window chan struct{}, in inboxes) error {
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
		case *kubesvcv1.ControlMessage_AccountCommand:
			if err := in.cmds.push(m.GetAccountCommand()); err != nil {
				return err
			}
		case *kubesvcv1.ControlMessage_Operation:
			if err := in.ops.push(m.GetOperation()); err != nil {
				return err
			}
		case *kubesvcv1.ControlMessage_Assignment:
			s.assign(m.GetAssignment())
		case *kubesvcv1.ControlMessage_ProxyRequest:
			call := s.proxies.admit(ctx, m.GetProxyRequest())
			if err := in.relays.push(call); err != nil {
				s.proxies.done(call)
				return err
			}
		case *kubesvcv1.ControlMessage_ProxyWindow:
			s.proxies.refill(m.GetProxyWindow().GetId(), m.GetProxyWindow().GetChunks())
		case *kubesvcv1.ControlMessage_ProxyCancel:
			s.proxies.cancel(m.GetProxyCancel().GetId())
		case *kubesvcv1.ControlMessage_ProxyData:
			s.proxies.data(m.GetProxyData().GetId(), m.GetProxyData().GetData())
		case *kubesvcv1.ControlMessage_OperationResultAck:
			s.agent.operator.results.ack(m.GetOperationResultAck().GetId())
		case *kubesvcv1.ControlMessage_Heartbeat:
		}
	}
}

func (s *session) sendHeartbeats(ctx context.Context) error {
	t := time.NewTicker(s.heartbeat)
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
	// meta hands the runner an edit of the account's description alone
	// (the latest one: capacity 1, replaced when unread).
	meta chan Account
}

// manageAccounts runs an accountRunner per account and follows account
// changes: removed accounts stop and are reported REMOVED; changed ones
// restart.
func (s *session) manageAccounts(ctx context.Context) error {
	a := s.agent
	total := make(chan struct{}, a.cfg.TotalBudget)
	running := map[string]*runningAccount{}
	// standby: accounts served but not cached, reported as such in this
	// session so the control plane can assign them.
	standby := map[string]Account{} // as last announced
	var wg sync.WaitGroup
	defer func() {
		for _, ra := range running {
			ra.cancel()
		}
		wg.Wait()
	}()
	for first := true; ; first = false {
		served := a.snapshot()
		desired := s.assigned.filter(served)
		for name, ra := range running {
			d, ok := desired[name]
			if ok && d.equal(ra.acct) {
				continue
			}
			if ok && d.sameStreaming(ra.acct) {
				// Its permissions changed: the runner describes it anew,
				// without reconnecting or listing again.
				ra.acct = d
				select {
				case <-ra.meta:
				default:
				}
				ra.meta <- d
				continue
			}
			ra.cancel()
			<-ra.done
			delete(running, name)
			if _, still := served[name]; still && !ok {
				// Another agent replica caches it now; this one still
				// executes its operations.
				a.log.Info("account no longer assigned to this agent; stopped caching it", "account", name)
				s.forgetAccount(name)
				continue
			}
			if ok {
				// Changed: the new runner lists every stream again (the
				// resume points are spent) and removes the streams the new
				// settings no longer want; the cache keeps serving the old
				// objects meanwhile.
				if d.server != ra.acct.server {
					// Its kubeconfig file names another API server (see
					// Agent.serverMoved): the positions of the old one
					// mean nothing there.
					s.serverMoved(name)
					a.log.Info("account's API server changed; restarting it", "account", name)
					continue
				}
				a.log.Info("account changed; restarting it", "account", name)
				continue
			}
			a.log.Info("account removed", "account", name)
			s.forgetAccount(name)
			s.status(ctx, &kubesvcv1.AccountStatus{Account: name, State: kubesvcv1.AccountStatus_REMOVED})
		}
		for name, acct := range served {
			if _, cached := desired[name]; cached {
				delete(standby, name)
				continue
			}
			if prev, ok := standby[name]; !ok || !prev.equal(acct) {
				// Announced again after an edit: its description changed.
				standby[name] = acct
				s.status(ctx, &kubesvcv1.AccountStatus{Account: name, State: kubesvcv1.AccountStatus_STANDBY, Info: a.infoOf(acct)})
			}
		}
		for name := range standby {
			if _, ok := served[name]; !ok {
				// Removed from the configuration while not cached here:
				// the control plane must stop counting on this agent.
				delete(standby, name)
				a.log.Info("account removed", "account", name)
				s.status(ctx, &kubesvcv1.AccountStatus{Account: name, State: kubesvcv1.AccountStatus_REMOVED})
			}
		}
		if first {
			a.log.Info("caching accounts", "accounts", len(desired), "standby", len(standby))
		}
		for name, acct := range desired {
			if _, ok := running[name]; ok {
				continue
			}
			if !first {
				a.log.Info("caching account", "account", name)
			}
			actx, cancel := context.WithCancel(ctx)
			ra := &runningAccount{acct: acct, cancel: cancel, done: make(chan struct{}), meta: make(chan Account, 1)}
			running[name] = ra
			r := &accountRunner{acct: acct, sess: s, budget: newBudget(total, a.cfg.BudgetPerAccount), log: a.log.With("account", name), meta: ra.meta}
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
