package agent

import (
	"sync"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// accountStates remembers the state last reported for each account, for
// the agent's /health and metrics: an agent connected to the control
// plane may still fail to serve its accounts.
type accountStates struct {
	mu     sync.Mutex // guards states
	states map[string]kubesvcv1.AccountStatus_State
}

// set records st; REMOVED forgets the account.
func (a *accountStates) set(st *kubesvcv1.AccountStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.states == nil {
		a.states = map[string]kubesvcv1.AccountStatus_State{}
	}
	if st.GetState() == kubesvcv1.AccountStatus_REMOVED {
		delete(a.states, st.GetAccount())
		return
	}
	a.states[st.GetAccount()] = st.GetState()
}

// counts returns how many accounts are in each state, by name.
func (a *accountStates) counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, st := range a.states {
		out[st.String()]++
	}
	return out
}

// reset forgets every account: a new session reports each one again, and
// an account removed while disconnected is not reported at all.
func (a *accountStates) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.states = nil
}
