package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sort"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// ErrAgentGone is returned (wrapped) when the agent a command was sent to
// disconnected before answering.
var ErrAgentGone = errors.New("agent disconnected")

// AgentInfo describes a connected agent for the dynamic-accounts reconciler.
type AgentInfo struct {
	ID, ZoneID string
	// DynamicAccounts: the agent accepts account commands.
	DynamicAccounts bool
	// Accounts the agent serves right now, sorted.
	Accounts []string
}

// ConnectedAgents returns the agents connected to this replica, by id.
func (s *Server) ConnectedAgents() []AgentInfo {
	s.registry.mu.Lock()
	defer s.registry.mu.Unlock()
	out := make([]AgentInfo, 0, len(s.registry.agents))
	for _, sess := range s.registry.agents {
		ai := AgentInfo{ID: sess.agentID, ZoneID: sess.zoneID, DynamicAccounts: sess.dynamicAccounts}
		for name := range sess.accounts {
			ai.Accounts = append(ai.Accounts, name)
		}
		sort.Strings(ai.Accounts)
		out = append(out, ai)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AgentsChanged is signalled (coalesced) whenever an agent connects,
// disconnects, or the set of accounts it serves changes.
func (s *Server) AgentsChanged() <-chan struct{} { return s.agentsChanged }

func (s *Server) signalAgents() {
	select {
	case s.agentsChanged <- struct{}{}:
	default:
	}
}

// SendAccountCommand sends cmd to the agent and waits for its result, the
// agent's disconnection, or ctx.
func (s *Server) SendAccountCommand(ctx context.Context, agentID string, cmd *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error) {
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
	defer func() {
		sess.pendingMu.Lock()
		delete(sess.pending, cmd.GetId())
		sess.pendingMu.Unlock()
	}()
	return roundTrip(ctx, sess, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_AccountCommand{AccountCommand: cmd}}, ch)
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
// (registered by the caller), the agent's disconnection, or ctx.
func roundTrip[R any](ctx context.Context, sess *session, msg *kubesvcv1.ControlMessage, ch <-chan R) (R, error) {
	var zero R
	select {
	case sess.out <- msg:
	case <-sess.done:
		return zero, fmt.Errorf("agent %s: %w", sess.agentID, ErrAgentGone)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case res := <-ch:
		return res, nil
	case <-sess.done:
		return zero, fmt.Errorf("agent %s: %w before answering", sess.agentID, ErrAgentGone)
	case <-ctx.Done():
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

// deliver hands a command result to its waiter, if any is left.
func (sess *session) deliver(res *kubesvcv1.AccountCommandResult) {
	sess.pendingMu.Lock()
	p, ok := sess.pending[res.GetId()]
	sess.pendingMu.Unlock()
	if ok {
		select {
		case p.result <- res:
		default:
		}
	}
}

// SendOperation sends op to the agent and waits for its result, the agent's
// disconnection, or ctx (the caller's operation deadline).
func (s *Server) SendOperation(ctx context.Context, agentID string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	sess, err := s.session(agentID)
	if err != nil {
		return nil, err
	}
	ch := make(chan *kubesvcv1.OperationResult, 1)
	sess.pendingMu.Lock()
	sess.pendingOps[op.GetId()] = ch
	sess.pendingMu.Unlock()
	defer func() {
		sess.pendingMu.Lock()
		delete(sess.pendingOps, op.GetId())
		sess.pendingMu.Unlock()
	}()
	return roundTrip(ctx, sess, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Operation{Operation: op}}, ch)
}

// deliverOperation hands an operation result to its waiter, if any.
func (sess *session) deliverOperation(res *kubesvcv1.OperationResult) {
	sess.pendingMu.Lock()
	ch, ok := sess.pendingOps[res.GetId()]
	sess.pendingMu.Unlock()
	if ok {
		select {
		case ch <- res:
		default:
		}
	}
}
