package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// Peer is a control-plane replica as peer discovery sees it.
type Peer struct {
	ID, BaseURL string
	Ready       bool
	LastUpdated time.Time
}

// Peers lists the replicas of the cluster (kubesvc.cluster: kubernetes
// Endpoints, a static list). It is the consumer's view of peer discovery.
type Peers interface {
	Peers() []Peer
}

// errFenced ends this replica's sessions when it lost its place in the
// cluster: its peers reaped it, or it could not heartbeat for
// ReplicaTimeout. The agents reconnect, to a survivor if this replica is
// cut off, and their accounts follow them.
var errFenced = errors.New("this control-plane replica lost its cluster membership")

// clusterView is what this replica last read of the whole cluster. Agents
// of this replica are always read live from the registry instead.
//
// Lock ordering: clusterView.mu is never held while taking registry.mu.
type clusterView struct {
	mu          sync.Mutex // guards the fields below
	sessions    []store.AgentSession
	served      map[string][]string // agent -> accounts it serves
	assignments map[string]store.Assignment
	replicas    map[string]store.Replica
	// gone holds the last heartbeat read of each replica whose row has
	// since disappeared (reaped, or left): what GET /armory/clouddrivers
	// reports as its lastUpdated while discovery still lists it.
	gone      map[string]time.Time
	refreshed time.Time
}

func (v *clusterView) set(sessions []store.AgentSession, served map[string][]string, assignments []store.Assignment, replicas []store.Replica) {
	byAccount := make(map[string]store.Assignment, len(assignments))
	for _, a := range assignments {
		byAccount[a.Account] = a
	}
	byID := make(map[string]store.Replica, len(replicas))
	for _, r := range replicas {
		byID[r.ID] = r
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gone == nil {
		v.gone = map[string]time.Time{}
	}
	for id, r := range v.replicas {
		if _, ok := byID[id]; !ok {
			v.gone[id] = r.HeartbeatAt
		}
	}
	for id := range byID {
		delete(v.gone, id)
	}
	pruneGone(v.gone, time.Now())
	v.sessions, v.served, v.assignments, v.replicas, v.refreshed = sessions, served, byAccount, byID, time.Now()
}

// Replicas gone are remembered for a day, at most maxGone of them (the
// latest): every rollout of a Deployment leaves one per pod, under a
// random name.
const (
	goneFor = 24 * time.Hour
	maxGone = 256
)

// pruneGone forgets the replicas gone longer than goneFor ago, and the
// oldest beyond maxGone.
func pruneGone(gone map[string]time.Time, now time.Time) {
	for id, at := range gone {
		if now.Sub(at) > goneFor {
			delete(gone, id)
		}
	}
	for len(gone) > maxGone {
		oldest := ""
		for id, at := range gone {
			if oldest == "" || at.Before(gone[oldest]) {
				oldest = id
			}
		}
		delete(gone, oldest)
	}
}

// remoteAgents returns the agents of other replicas.
func (v *clusterView) remoteAgents(self string) []AgentInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	assigned := map[string][]string{}
	for _, a := range v.assignments {
		assigned[a.SessionID] = append(assigned[a.SessionID], a.Account)
	}
	var out []AgentInfo
	for _, s := range v.sessions {
		if s.ReplicaID == self {
			continue
		}
		as := assigned[s.SessionID]
		sort.Strings(as)
		out = append(out, AgentInfo{ID: s.AgentID, ZoneID: s.ZoneID, Version: s.Version, DynamicAccounts: s.DynamicAccounts,
			Accounts: v.served[s.AgentID], Assigned: as, ReplicaID: s.ReplicaID, ConnectedAt: s.ConnectedAt})
	}
	return out
}

// replicaOf returns the replica holding agentID's session.
func (v *clusterView) replicaOf(agentID string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.sessions {
		if s.AgentID == agentID {
			return s.ReplicaID, true
		}
	}
	return "", false
}

func (v *clusterView) replica(id string) (store.Replica, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r, ok := v.replicas[id]
	return r, ok
}

func (v *clusterView) assignment(account string) (store.Assignment, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	a, ok := v.assignments[account]
	return a, ok
}

// refresh reads the cluster's state from the store.
func (s *Server) refresh(ctx context.Context) (sessions []store.AgentSession, served map[string][]string, assignments []store.Assignment, err error) {
	// Every replica reads these every AssignInterval: they tell whether
	// the database answers (readiness). Bounded: a database that stops
	// answering without an error (a partition) must show as a failure,
	// heartbeats on or off.
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, max(5*time.Second, 10*s.cfg.AssignInterval))
	defer cancel()
	defer func() {
		switch {
		case err == nil:
			s.db.ok()
		case parent.Err() == nil:
			s.db.failed(err)
		}
	}()
	if sessions, err = s.store.AgentSessions(ctx); err != nil {
		return nil, nil, nil, err
	}
	if served, err = s.store.AllAgentAccounts(ctx); err != nil {
		return nil, nil, nil, err
	}
	if assignments, err = s.store.Assignments(ctx); err != nil {
		return nil, nil, nil, err
	}
	replicas, err := s.store.Replicas(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	s.cluster.set(sessions, served, assignments, replicas)
	ids := make([]string, 0, len(replicas))
	for _, r := range replicas {
		ids = append(ids, r.ID)
	}
	agents := map[string]int{}
	for _, sess := range sessions {
		agents[sess.ReplicaID]++
	}
	s.metrics.observeCluster(ids, agents, replicaLoads(assignments))
	return sessions, served, assignments, nil
}

// runHeartbeat records this replica alive every HeartbeatPeriod, with its
// ReplicaTimeout, and reaps peers silent for longer than the timeout each
// recorded. A replica reaped by its peers, or unable
// to heartbeat for ReplicaTimeout, drops its agents (fencing): the peers
// have given their accounts to others. On a clean stop it leaves the
// cluster at once, so its accounts move without waiting for the timeout.
func (s *Server) runHeartbeat(ctx context.Context) error {
	if d := s.cfg.HeartbeatInitialDelay; d > 0 && !sleepCtx(ctx, d) {
		return nil
	}
	if s.cfg.NoHeartbeat {
		if _, err := s.store.HeartbeatReplica(ctx, store.Replica{ID: s.cfg.ID, BaseURL: s.cfg.BaseURL}); err != nil && ctx.Err() == nil {
			s.log.Error("cluster: record this replica", "err", err)
		}
		<-ctx.Done()
		return s.leaveCluster()
	}
	t := time.NewTicker(s.cfg.HeartbeatPeriod)
	defer t.Stop()
	registered, lastOK := false, time.Now()
	for {
		// Bounded, so that a database that stopped answering (a partition)
		// cannot hold the loop past the point where it must fence.
		hctx, cancel := context.WithTimeout(ctx, s.cfg.HeartbeatPeriod)
		existed, err := s.store.HeartbeatReplica(hctx, store.Replica{ID: s.cfg.ID, BaseURL: s.cfg.BaseURL, Timeout: s.cfg.ReplicaTimeout})
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.db.failed(err)
			s.heartbeatErrs.Failed(err)
			if time.Since(lastOK) > s.cfg.ReplicaTimeout && s.registry.count() > 0 {
				s.log.Warn("cluster: no heartbeat for the replica timeout; dropping this replica's agents", "timeout", s.cfg.ReplicaTimeout)
				s.registry.closeAll(errFenced)
			}
		case registered && !existed:
			s.log.Warn("cluster: peers declared this replica dead; dropping its agents so they reconnect")
			s.registry.closeAll(errFenced)
			lastOK = time.Now()
		default:
			registered, lastOK = true, time.Now()
		}
		if err == nil {
			s.db.ok()
			s.heartbeatErrs.OK()
		}
		if ctx.Err() == nil && err == nil {
			rctx, cancel := context.WithTimeout(ctx, s.cfg.HeartbeatPeriod)
			// Each peer is judged by the timeout it recorded (its own
			// heartbeat period may differ from this one's); this one's for
			// the rows of older binaries, which record none.
			reaped, err := s.store.ReapReplicas(rctx, time.Now(), s.cfg.ReplicaTimeout)
			cancel()
			if err != nil {
				s.reapErrs.Failed(err)
			} else if s.reapErrs.OK(); len(reaped) > 0 {
				s.log.Warn("cluster: replicas silent for the replica timeout removed; their accounts are taken over", "replicas", reaped)
				s.pokeAssigner()
			}
		}
		select {
		case <-ctx.Done():
			return s.leaveCluster()
		case <-t.C:
		}
	}
}

// runSchemaCheck stops the replica once a newer kubesvc has migrated the
// shared database in a way this binary must not run against: the rolling
// upgrade past an incompatible migration that Open, which checks at start
// only, cannot see. Stopping, not serving on: every query of this binary
// could misread or miswrite the new schema, and a restarted replica of this
// release refuses the database at start with the same message. Other
// errors (the database unreachable for a while) are logged and retried.
func (s *Server) runSchemaCheck(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SchemaCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.SchemaCheckPeriod)
		err := s.store.CheckSchema(cctx)
		cancel()
		switch {
		case errors.Is(err, store.ErrSchemaTooNew):
			return fmt.Errorf("controlplane: stopping this replica: %w", err)
		case err != nil && ctx.Err() == nil:
			s.schemaErrs.Failed(err)
		case err == nil:
			s.schemaErrs.OK()
		}
	}
}

// leaveCluster removes this replica's row (a clean stop): its accounts
// move at once instead of after the replica timeout.
func (s *Server) leaveCluster() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.RemoveReplica(ctx, s.cfg.ID); err != nil {
		s.log.Warn("cluster: leave", "err", err)
	}
	return nil
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
