package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Assignment: each account is cached by exactly one agent session at a
// time, recorded in kubesvc_assignments. An agent keeps its accounts across
// reconnections (its new session inherits them, on whichever replica); an
// account without a valid assignment goes to the least busy live agent
// serving it, and never moves off a still-connected holder.

func (sess *session) record(replicaID string) store.AgentSession {
	return store.AgentSession{AgentID: sess.agentID, SessionID: sess.id, ReplicaID: replicaID,
		ZoneID: sess.zoneID, Version: sess.version, DynamicAccounts: sess.dynamicAccounts, ConnectedAt: sess.connectedAt}
}

// admit records a new session in the cluster and returns the accounts it
// caches at once: those its agent held before (its previous session, here
// or on another replica, is over). Free accounts come with the assigner
// once the session is AssignInterval old, so that agent replicas starting
// together share them (see plan).
func (s *Server) admit(ctx context.Context, sess *session, served []string) ([]string, error) {
	// One assignment decision at a time on this replica, so that a
	// concurrent pass does not undo what this one records. Only this
	// agent's rows are read: many agents reconnecting at once each cost
	// a few rows, not the whole tables.
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	replaced, moved, err := s.store.PutAgentSession(ctx, sess.record(s.cfg.ID))
	if err != nil {
		return nil, err
	}
	if replaced != nil && replaced.ReplicaID != s.cfg.ID {
		// The agent left that replica; make sure it knows.
		s.disconnectRemote(replaced.ReplicaID, replaced.AgentID, replaced.SessionID)
	}
	var inherited, stale []string
	for _, a := range moved {
		if slices.Contains(served, a) {
			inherited = append(inherited, a)
		} else {
			stale = append(stale, a)
		}
	}
	if len(stale) > 0 {
		if err := s.store.ReleaseAssignments(ctx, sess.id, stale); err != nil {
			return nil, err
		}
	}
	s.registry.setAssigned(sess, inherited)
	time.AfterFunc(s.cfg.AssignInterval, s.pokeAssigner)
	return inherited, nil
}

// leave removes an ended session from the cluster: its accounts become
// free for the other agents serving them.
func (s *Server) leave(sess *session) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.RemoveAgentSession(ctx, sess.agentID, sess.id); err != nil {
		s.log.Error("cluster: release the session's accounts", "agent", sess.agentID, "err", err)
	}
	s.pokeAssigner()
}

// plan decides which free accounts each live session should claim: every
// account served by some session and without a valid assignment goes to
// the session serving it with the fewest accounts, then on the replica with
// the fewest, then by agent id. It returns accounts by session id.
func plan(sessions []store.AgentSession, served map[string][]string, assignments []store.Assignment, replicaLoad map[string]int) map[string][]string {
	live := map[string]store.AgentSession{}
	for _, s := range sessions {
		live[s.SessionID] = s
	}
	load := map[string]int{}
	taken := map[string]bool{}
	for _, a := range assignments {
		if _, ok := live[a.SessionID]; ok {
			load[a.SessionID]++
			taken[a.Account] = true
		}
	}
	candidates := map[string][]store.AgentSession{}
	for _, s := range sessions {
		for _, acct := range served[s.AgentID] {
			if !taken[acct] {
				candidates[acct] = append(candidates[acct], s)
			}
		}
	}
	accounts := make([]string, 0, len(candidates))
	for a := range candidates {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	out := map[string][]string{}
	for _, acct := range accounts {
		best := slices.MinFunc(candidates[acct], func(a, b store.AgentSession) int {
			switch {
			case load[a.SessionID] != load[b.SessionID]:
				return load[a.SessionID] - load[b.SessionID]
			case replicaLoad[a.ReplicaID] != replicaLoad[b.ReplicaID]:
				return replicaLoad[a.ReplicaID] - replicaLoad[b.ReplicaID]
			}
			return cmpString(a.AgentID, b.AgentID)
		})
		out[best.SessionID] = append(out[best.SessionID], acct)
		load[best.SessionID]++
		replicaLoad[best.ReplicaID]++
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// replicaLoads counts the assignments of each replica.
func replicaLoads(assignments []store.Assignment) map[string]int {
	out := map[string]int{}
	for _, a := range assignments {
		out[a.ReplicaID]++
	}
	return out
}

func (s *Server) pokeAssigner() {
	select {
	case s.assignPoke <- struct{}{}:
	default:
	}
}

// runAssigner claims free accounts for this replica's agents every
// AssignInterval, or sooner when poked, and tells each agent when the set
// it caches changes.
func (s *Server) runAssigner(ctx context.Context) error {
	t := time.NewTicker(s.cfg.AssignInterval)
	defer t.Stop()
	for {
		switch err := s.reassign(ctx); {
		case err != nil && ctx.Err() == nil:
			s.assignErrs.Failed(err)
		case err == nil:
			s.assignErrs.OK()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.assignPoke:
		}
	}
}

func (s *Server) reassign(ctx context.Context) error {
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	sessions, served, assignments, err := s.refresh(ctx)
	if err != nil {
		return err
	}
	claims := plan(sessions, served, assignments, replicaLoads(assignments))
	local := s.registry.sessions()
	claimedAny := false
	for _, sess := range local {
		want := claims[sess.id]
		if len(want) == 0 || time.Since(sess.connectedAt) < s.cfg.AssignInterval {
			// A new session waits for its peers starting with it.
			continue
		}
		if _, err := s.store.ClaimAssignments(ctx, sess.record(s.cfg.ID), want); err != nil {
			if !errors.Is(err, store.ErrConflict) {
				return err
			}
			continue // the session ended meanwhile
		}
		claimedAny = true
	}
	if claimedAny {
		if _, _, assignments, err = s.refresh(ctx); err != nil {
			return err
		}
		s.signalAgents()
	}
	held := map[string][]string{}
	for _, a := range assignments {
		held[a.SessionID] = append(held[a.SessionID], a.Account)
	}
	for _, sess := range local {
		// Accounts the agent stopped serving are free for others.
		kept, dropped := s.registry.splitServed(sess, held[sess.id])
		if len(dropped) > 0 {
			if err := s.store.ReleaseAssignments(ctx, sess.id, dropped); err != nil {
				return err
			}
			held[sess.id] = kept
		}
	}
	for _, sess := range local {
		if !sess.assignable {
			s.registry.setAssigned(sess, held[sess.id])
			continue
		}
		added, changed := s.registry.setAssigned(sess, held[sess.id])
		if !changed {
			continue
		}
		if err := s.sendAssignment(ctx, sess, held[sess.id], added); err != nil {
			s.log.Warn("cluster: send assignment", "agent", sess.agentID, "err", err)
		}
	}
	return nil
}

// sendAssignment tells an agent the accounts it caches, with the resume
// points of those just added.
func (s *Server) sendAssignment(ctx context.Context, sess *session, accounts, added []string) error {
	msg := &kubesvcv1.Assignment{Accounts: accounts}
	if len(added) > 0 {
		streams, err := s.store.Streams(ctx, added)
		if err != nil {
			return err
		}
		msg.ResumePoints = resumePointsToProto(streams)
	}
	s.log.Info("cluster: accounts assigned", "agent", sess.agentID, "accounts", len(accounts), "added", len(added))
	// A session whose stream does not drain (a stalled agent) must not
	// hold every assignment decision of this replica: it is ended.
	t := time.NewTimer(assignmentSendTimeout)
	defer t.Stop()
	select {
	case sess.out <- &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Assignment{Assignment: msg}}:
		return nil
	case <-sess.done:
		return fmt.Errorf("agent %s: %w", sess.agentID, ErrAgentGone)
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		sess.cancel(errStalled)
		return fmt.Errorf("agent %s: %w", sess.agentID, errStalled)
	}
}

// assignmentSendTimeout bounds queueing an Assignment for an agent.
const assignmentSendTimeout = 5 * time.Second

var errStalled = errors.New("the agent's stream does not drain; session ended")

// claimTaken records, after an AddAccounts command succeeded, that the
// agent which took the accounts caches them (it started at once).
func (s *Server) claimTaken(ctx context.Context, sess *session, accounts []string) error {
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	claimed, err := s.store.ClaimAssignments(ctx, sess.record(s.cfg.ID), accounts)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	s.registry.addAssigned(sess, claimed)
	return nil
}

// ownChanges drops the changes of accounts assigned to another agent
// session: an agent still streaming an account the control plane moved
// away from it (it stops when its Assignment arrives) must not write over
// the new holder's stream.
func (s *Server) ownChanges(sess *session, changes []store.Change) []store.Change {
	if !sess.assignable {
		return changes
	}
	foreign := map[string]bool{} // by account, once decided
	anyForeign := false
	for _, c := range changes {
		acct := c.Stream.Account
		if _, decided := foreign[acct]; decided {
			continue
		}
		a, ok := s.cluster.assignment(acct)
		foreign[acct] = !s.registry.isAssigned(sess, acct) && ok && a.SessionID != sess.id
		anyForeign = anyForeign || foreign[acct]
	}
	if !anyForeign {
		return changes
	}
	kept := make([]store.Change, 0, len(changes))
	for _, c := range changes {
		if !foreign[c.Stream.Account] {
			kept = append(kept, c)
		}
	}
	return kept
}
