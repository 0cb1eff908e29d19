package agent

import (
	"sync"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// assignment is the set of accounts the control plane lets this session
// cache. Agent replicas configured with the same accounts each get a part,
// so that no account is cached twice; an account not assigned here is still
// served for operations.
type assignment struct {
	mu sync.Mutex // guards all and accounts
	// all: the control plane does not assign; cache every account.
	all      bool
	accounts map[string]bool
}

func newAssignment(w *kubesvcv1.Welcome) *assignment {
	as := &assignment{all: !w.GetAssigns(), accounts: map[string]bool{}}
	for _, name := range w.GetAssignedAccounts() {
		as.accounts[name] = true
	}
	return as
}

// set replaces the assigned accounts.
func (as *assignment) set(names []string) {
	next := make(map[string]bool, len(names))
	for _, n := range names {
		next[n] = true
	}
	as.mu.Lock()
	as.accounts = next
	as.mu.Unlock()
}

// add assigns accounts this agent just took on the control plane's command.
func (as *assignment) add(names ...string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, n := range names {
		as.accounts[n] = true
	}
}

// filter returns the accounts of served that this session caches.
func (as *assignment) filter(served map[string]Account) map[string]Account {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.all {
		return served
	}
	out := make(map[string]Account, len(as.accounts))
	for name, acct := range served {
		if as.accounts[name] {
			out[name] = acct
		}
	}
	return out
}

// assign applies an Assignment from the control plane: the new set, and
// the resume points of the accounts it adds.
func (s *session) assign(m *kubesvcv1.Assignment) {
	s.mu.Lock()
	for _, rp := range m.GetResumePoints() {
		id := streamID(rp.GetStream())
		s.resume[id] = rp
		s.markKnown(id, rp.GetStream())
	}
	s.mu.Unlock()
	s.assigned.set(m.GetAccounts())
	s.agent.log.Info("accounts assigned by the control plane", "accounts", len(m.GetAccounts()), "resumePoints", len(m.GetResumePoints()))
	s.agent.signalChanged()
}

// has reports whether the session caches account.
func (as *assignment) has(account string) bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.all || as.accounts[account]
}
