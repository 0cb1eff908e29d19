package controlplane

import (
	"sort"
	"sync"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// registry is the set of agents connected to this replica. Each agent id
// has at most one live session: a new session of the same id replaces (and
// ends) the old one.
type registry struct {
	mu     sync.Mutex // guards agents and everything reachable from it
	agents map[string]*session
}

func newRegistry() *registry { return &registry{agents: map[string]*session{}} }

// add registers s and returns the session it replaces, if any, and
// whether the two take turns (two agents sharing an id, see takingTurns).
func (r *registry) add(s *session) (replaced *session, turns bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	replaced = r.agents[s.agentID]
	r.agents[s.agentID] = s
	if replaced != nil {
		s.replacedHost = replaced.host
		turns = takingTurns(replaced, s)
	}
	return replaced, turns
}

// remove unregisters s unless a newer session of the same agent replaced it.
func (r *registry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.agents[s.agentID] == s {
		delete(r.agents, s.agentID)
	}
}

func (r *registry) touch(s *session, now time.Time) {
	r.mu.Lock()
	s.lastSeen = now
	r.mu.Unlock()
}

func (r *registry) lastSeen(s *session) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return s.lastSeen
}

// setAccount records the latest status of one of s's accounts; REMOVED
// forgets the account. It reports whether the set of s's accounts changed.
func (r *registry) setAccount(s *session, st *kubesvcv1.AccountStatus) (setChanged bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.GetState() == kubesvcv1.AccountStatus_REMOVED {
		_, had := s.accounts[st.GetAccount()]
		delete(s.accounts, st.GetAccount())
		return had
	}
	a := s.accounts[st.GetAccount()]
	if a == nil {
		a = &accountState{}
		s.accounts[st.GetAccount()] = a
		setChanged = true
	}
	if st.GetInfo() != nil {
		a.info = st.GetInfo()
	}
	a.state, a.message, a.streams, a.updated = st.GetState(), st.GetMessage(), st.GetStreams(), time.Now()
	return setChanged
}

// addAccount records that s serves an account it just took, unless s
// already reported it (its own status is newer than the command result).
func (r *registry) addAccount(s *session, st *kubesvcv1.AccountStatus) bool {
	r.mu.Lock()
	_, known := s.accounts[st.GetAccount()]
	r.mu.Unlock()
	if known {
		return false
	}
	return r.setAccount(s, st)
}

// accountNames returns the names of s's accounts, sorted.
func (r *registry) accountNames(s *session) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(s.accounts))
	for name := range s.accounts {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// agentView is a consistent copy of a session's registry data.
type agentView struct {
	AgentID, ZoneID, Version, SessionID string
	ConnectedAt, LastSeen               time.Time
	Accounts                            map[string]accountState
}

type accountState struct {
	info    *kubesvcv1.AccountInfo
	state   kubesvcv1.AccountStatus_State
	message string
	streams uint32
	updated time.Time
}

func (r *registry) view(s *session) agentView {
	v := agentView{
		AgentID: s.agentID, ZoneID: s.zoneID, Version: s.version, SessionID: s.id,
		ConnectedAt: s.connectedAt, LastSeen: s.lastSeen,
		Accounts: make(map[string]accountState, len(s.accounts)),
	}
	for name, a := range s.accounts {
		v.Accounts[name] = *a
	}
	return v
}

// list returns every connected agent, sorted by id.
func (r *registry) list() []agentView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]agentView, 0, len(r.agents))
	for _, s := range r.agents {
		out = append(out, r.view(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out
}

// holders returns the agents serving an account, sorted by agent id.
func (r *registry) holders(account string) []agentView {
	var out []agentView
	for _, v := range r.list() {
		if _, ok := v.Accounts[account]; ok {
			out = append(out, v)
		}
	}
	return out
}

// closeAll ends every session, for shutdown.
func (r *registry) closeAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.agents {
		s.cancel(cause)
	}
}

// sessions returns this replica's live sessions.
func (r *registry) sessions() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.agents))
	for _, s := range r.agents {
		out = append(out, s)
	}
	return out
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.agents)
}

// setAssigned records the accounts s caches; it returns those added and
// whether the set changed.
func (r *registry) setAssigned(s *session, accounts []string) (added []string, changed bool) {
	next := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		next[a] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for a := range next {
		if !s.assigned[a] {
			added = append(added, a)
		}
	}
	changed = len(added) > 0 || len(next) != len(s.assigned)
	s.assigned = next
	sort.Strings(added)
	return added, changed
}

// isAssigned reports whether s caches account.
func (r *registry) isAssigned(s *session, account string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return s.assigned[account]
}

// cachesLocally reports whether a session of this replica caches account
// (serves it and, if its agent takes assignments, is assigned it): then
// this replica's commits, which it is notified of, are the account's.
func (r *registry) cachesLocally(account string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.agents {
		if _, ok := s.accounts[account]; ok && (!s.assignable || s.assigned[account]) {
			return true
		}
	}
	return false
}

// splitServed splits accounts into those s serves and the others.
func (r *registry) splitServed(s *session, accounts []string) (served, others []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range accounts {
		if _, ok := s.accounts[a]; ok {
			served = append(served, a)
		} else {
			others = append(others, a)
		}
	}
	return served, others
}

// addAssigned adds accounts to those s caches.
func (r *registry) addAssigned(s *session, accounts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.assigned == nil {
		s.assigned = map[string]bool{}
	}
	for _, a := range accounts {
		s.assigned[a] = true
	}
}

// accountStates counts the accounts of this replica's agents by the state
// each agent reports (an account served by two agents counts twice).
func (r *registry) accountStates() map[kubesvcv1.AccountStatus_State]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[kubesvcv1.AccountStatus_State]int{}
	for _, s := range r.agents {
		for _, st := range s.accounts {
			out[st.state]++
		}
	}
	return out
}
