package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// ErrAgentGone is returned (wrapped) when the agent a command was sent to
// disconnected before answering.
var ErrAgentGone = errors.New("agent disconnected")

// AgentInfo describes a connected agent, on this replica or another.
type AgentInfo struct {
	ID, ZoneID string
	// Version is the one the agent sent in its registration (empty when
	// its replica runs a binary that does not record it).
	Version string
	// DynamicAccounts: the agent accepts account commands.
	DynamicAccounts bool
	// Accounts the agent serves right now, sorted.
	Accounts []string
	// Assigned: the accounts it caches, sorted.
	Assigned []string
	// ReplicaID is the control-plane replica holding its session.
	ReplicaID   string
	ConnectedAt time.Time
}

// ConnectedAgents returns the agents connected to the cluster, by id: this
// replica's live, the others' as of the last refresh (AssignInterval).
func (s *Server) ConnectedAgents() []AgentInfo {
	s.registry.mu.Lock()
	out := make([]AgentInfo, 0, len(s.registry.agents))
	local := map[string]bool{}
	for _, sess := range s.registry.agents {
		ai := AgentInfo{ID: sess.agentID, ZoneID: sess.zoneID, Version: sess.version, DynamicAccounts: sess.dynamicAccounts,
			ReplicaID: s.cfg.ID, ConnectedAt: sess.connectedAt}
		for name := range sess.accounts {
			ai.Accounts = append(ai.Accounts, name)
		}
		for name := range sess.assigned {
			ai.Assigned = append(ai.Assigned, name)
		}
		sort.Strings(ai.Accounts)
		sort.Strings(ai.Assigned)
		out = append(out, ai)
		local[sess.agentID] = true
	}
	s.registry.mu.Unlock()
	for _, ai := range s.cluster.remoteAgents(s.cfg.ID) {
		if !local[ai.ID] {
			out = append(out, ai)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// StaticAccounts maps each account an agent connected to the cluster serves
// from its own configuration (a static account) to those agents, sorted.
// This replica's agents say how they serve each account; for the other
// replicas' agents the store records only which accounts they serve, so
// every one of those counts: exact for a name that has no dynamic
// account's row, which is what the Dynamic Accounts API asks about before
// creating one.
func (s *Server) StaticAccounts(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	local := map[string]bool{}
	s.registry.mu.Lock()
	for _, sess := range s.registry.agents {
		local[sess.agentID] = true
		for name, st := range sess.accounts {
			if st.info != nil && !st.info.GetDynamic() {
				out[name] = append(out[name], sess.agentID)
			}
		}
	}
	s.registry.mu.Unlock()
	sessions, err := s.store.AgentSessions(ctx)
	if err != nil {
		return nil, err
	}
	var remote []string
	for _, sess := range sessions {
		if !local[sess.AgentID] {
			remote = append(remote, sess.AgentID)
		}
	}
	if len(remote) > 0 {
		all, err := s.store.AllAgentAccounts(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range remote {
			for _, name := range all[id] {
				out[name] = append(out[name], id)
			}
		}
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out, nil
}

// ClusterAgents returns the agents connected to the cluster as the database
// records them when called: every recorded session, this replica's too,
// with the accounts recorded for its agent. ConnectedAgents sees the other
// replicas' agents as of the last refresh (up to AssignInterval old), so a
// decision about them that must not be older than what it judges (a row
// of kubesvc_accounts read just before) reads them here. A replica records
// an agent's session (admit) before it signals AgentsChanged for it, and
// the accounts an agent serves before it reports an account command's
// result, so an agent any replica acted upon is here; an agent that left
// is gone from here before it is gone from its replica's registry.
func (s *Server) ClusterAgents(ctx context.Context) ([]AgentInfo, error) {
	sessions, err := s.store.AgentSessions(ctx)
	if err != nil {
		return nil, err
	}
	served, err := s.store.AllAgentAccounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AgentInfo, 0, len(sessions))
	for _, sess := range sessions {
		out = append(out, AgentInfo{ID: sess.AgentID, ZoneID: sess.ZoneID, Version: sess.Version, DynamicAccounts: sess.DynamicAccounts,
			Accounts: served[sess.AgentID], ReplicaID: sess.ReplicaID, ConnectedAt: sess.ConnectedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RouteAccount returns the agent to send an account's operations to: the
// one caching it, else any connected agent serving it.
func (s *Server) RouteAccount(account string) (string, bool) {
	agents := s.ConnectedAgents()
	for _, a := range agents {
		if slices.Contains(a.Assigned, account) {
			return a.ID, true
		}
	}
	for _, a := range agents {
		if slices.Contains(a.Accounts, account) {
			return a.ID, true
		}
	}
	return "", false
}

// servedByOthers reports whether an agent other than agentID, connected to
// any replica, serves account. It reads the database, not the cluster view
// (which a replica just started has not filled yet): it decides whether an
// account's cache may be dropped.
func (s *Server) servedByOthers(ctx context.Context, account, agentID string) (bool, error) {
	agents, err := s.store.AgentsServing(ctx, account)
	if err != nil {
		return false, err
	}
	agents = slices.DeleteFunc(agents, func(a string) bool { return a == agentID })
	if len(agents) == 0 {
		return false, nil
	}
	sessions, err := s.store.AgentSessions(ctx)
	if err != nil {
		return false, err
	}
	for _, sess := range sessions {
		if slices.Contains(agents, sess.AgentID) {
			return true, nil
		}
	}
	return false, nil
}

// localAgentFor returns the agent of this replica to run an account's
// operation: the one caching it, else one serving it.
func (s *Server) localAgentFor(account string) string {
	s.registry.mu.Lock()
	defer s.registry.mu.Unlock()
	fallback := ""
	for id, sess := range s.registry.agents {
		if sess.assigned[account] {
			return id
		}
		if _, ok := sess.accounts[account]; ok {
			fallback = id
		}
	}
	return fallback
}

// AgentsChanged is signalled (coalesced) whenever an agent connects (and
// again once its session is recorded), disconnects, or the set of
// accounts it serves changes (once recorded).
func (s *Server) AgentsChanged() <-chan struct{} { return s.agentsChanged }

func (s *Server) signalAgents() {
	select {
	case s.agentsChanged <- struct{}{}:
	default:
	}
}

// SendAccountCommand sends cmd to the agent, through the replica holding
// it, and waits for its result, the agent's disconnection, or ctx.
func (s *Server) SendAccountCommand(ctx context.Context, agentID string, cmd *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error) {
	if _, err := s.session(agentID); err != nil {
		return s.sendAccountCommandRemote(ctx, agentID, cmd)
	}
	return s.sendAccountCommandLocal(ctx, agentID, cmd)
}

func (s *Server) sendAccountCommandLocal(ctx context.Context, agentID string, cmd *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error) {
	sess, err := s.session(agentID)
	if err != nil {
		return nil, err
	}
	if !sess.dynamicAccounts {
		return nil, fmt.Errorf("agent %s does not accept dynamic accounts (dynamicAccountsEnabled is false)", agentID)
	}
	ch := make(chan *kubesvcv1.AccountCommandResult, 1)
	sess.pendingMu.Lock()
	sess.pending[cmd.GetId()] = pendingCommand{result: ch, add: cmd.GetAdd() != nil}
	sess.pendingMu.Unlock()
	withdraw := func() {
		sess.pendingMu.Lock()
		defer sess.pendingMu.Unlock()
		if sess.pending[cmd.GetId()].result == ch {
			delete(sess.pending, cmd.GetId())
		}
	}
	defer withdraw()
	return roundTrip(ctx, sess, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_AccountCommand{AccountCommand: cmd}}, ch, withdraw)
}

// session returns the live session of agentID, or ErrAgentGone.
func (s *Server) session(agentID string) (*session, error) {
	s.registry.mu.Lock()
	sess := s.registry.agents[agentID]
	s.registry.mu.Unlock()
	if sess == nil {
		return nil, fmt.Errorf("agent %s: %w", agentID, ErrAgentGone)
	}
	return sess, nil
}

// roundTrip sends msg down sess's stream and waits for the answer on ch
// (registered by the caller), the agent's disconnection, or ctx. withdraw
// unregisters the caller (under the lock deliveries send under).
func roundTrip[R any](ctx context.Context, sess *session, msg *kubesvcv1.ControlMessage, ch <-chan R, withdraw func()) (R, error) {
	var zero R
	select {
	case sess.out <- msg:
	case <-sess.done:
		return zero, fmt.Errorf("agent %s: %w", sess.agentID, ErrAgentGone)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	// handedOver returns an answer that came as the wait ended (both may
	// be ready at once): one the agent may have been told was received.
	// Deliveries send under the lock withdraw takes, so once withdraw has
	// run, an answer handed to this waiter is on ch.
	handedOver := func() (R, bool) {
		withdraw()
		select {
		case res := <-ch:
			return res, true
		default:
			return zero, false
		}
	}
	select {
	case res := <-ch:
		return res, nil
	case <-sess.done:
		if res, ok := handedOver(); ok {
			return res, nil
		}
		return zero, fmt.Errorf("agent %s: %w before answering", sess.agentID, ErrAgentGone)
	case <-ctx.Done():
		if res, ok := handedOver(); ok {
			return res, nil
		}
		return zero, fmt.Errorf("agent %s did not answer in time: %w", sess.agentID, ctx.Err())
	}
}

// pendingCommand is a command sent to an agent and awaiting its result.
type pendingCommand struct {
	result chan *kubesvcv1.AccountCommandResult
	add    bool
}

// isAdd reports whether the pending command id adds accounts.
func (sess *session) isAdd(id string) bool {
	sess.pendingMu.Lock()
	defer sess.pendingMu.Unlock()
	return sess.pending[id].add
}

// deliver hands a command result to its waiter, if any is left. It sends
// under pendingMu (the channel is buffered), as roundTrip expects.
func (sess *session) deliver(res *kubesvcv1.AccountCommandResult) {
	sess.pendingMu.Lock()
	defer sess.pendingMu.Unlock()
	if p, ok := sess.pending[res.GetId()]; ok {
		select {
		case p.result <- res:
		default:
		}
	}
}

// SendOperation sends op to the agent, through the replica holding it, and
// waits for its result, the agent's disconnection, or ctx (the caller's
// operation deadline).
func (s *Server) SendOperation(ctx context.Context, agentID string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	if _, err := s.session(agentID); err != nil {
		return s.sendOperationRemote(ctx, agentID, op)
	}
	return s.sendOperationLocal(ctx, agentID, op)
}

func (s *Server) sendOperationLocal(ctx context.Context, agentID string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	sess, err := s.session(agentID)
	if err != nil {
		return nil, err
	}
	ch := make(chan *kubesvcv1.OperationResult, 1)
	sess.pendingMu.Lock()
	sess.pendingOps[op.GetId()] = ch
	sess.pendingMu.Unlock()
	// The result is acknowledged to the agent as it is handed over, so
	// the handover is one-shot (deliverOperation removes the entry): a
	// waiter giving up either withdraws first, and the result goes to the
	// history instead, or finds it on ch.
	withdraw := func() { sess.withdrawOperation(op.GetId(), ch) }
	defer withdraw()
	return roundTrip(ctx, sess, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Operation{Operation: op}}, ch, withdraw)
}

// withdrawOperation unregisters ch, the waiter of operation id, unless a
// later waiter of the same id (the operation sent again) took its place.
func (sess *session) withdrawOperation(id string, ch chan *kubesvcv1.OperationResult) {
	sess.pendingMu.Lock()
	defer sess.pendingMu.Unlock()
	if sess.pendingOps[id] == ch {
		delete(sess.pendingOps, id)
	}
}

// deliverOperation hands an operation result to its waiter, if any, and
// reports whether there was one.
func (sess *session) deliverOperation(res *kubesvcv1.OperationResult) bool {
	sess.pendingMu.Lock()
	defer sess.pendingMu.Unlock()
	ch, ok := sess.pendingOps[res.GetId()]
	if !ok || sess.closed {
		return false
	}
	delete(sess.pendingOps, res.GetId())
	ch <- res // buffered, and this is its only send
	return true
}

// dropRemoved reports whether the cache of an account its agent stopped
// serving may go: no other agent, on any replica, serves it.
func (s *Server) dropRemoved(ctx context.Context, sess *session, account string) bool {
	others, err := s.servedByOthers(ctx, account, sess.agentID)
	if err != nil {
		s.log.Warn("account removed by its agent: cannot tell whether others serve it; keeping its cache", "account", account, "err", err)
		return false
	}
	return !others
}
