package agent

import "k8s.io/client-go/rest"

// perAccount caches, by account name, what is built from an account's
// client settings (its operations executor, its API proxy relay). Guarded
// by Agent.mu; SetAccounts and deleteDynamic drop the entries of accounts
// that go.
type perAccount[T any] map[string]builtFor[T]

// builtFor is a value and the account settings it was built from.
type builtFor[T any] struct {
	acct Account
	v    T
}

// clientFor returns cache's value for acct, building it with build the
// first time and again when the account's settings change. Two callers
// may build at once; the last one's value stays.
func clientFor[T any](a *Agent, cache perAccount[T], acct Account, build func(*rest.Config) (T, error)) (T, error) {
	a.mu.Lock()
	c, ok := cache[acct.Name]
	a.mu.Unlock()
	if ok && c.acct.equal(acct) {
		return c.v, nil
	}
	var zero T
	cfg, _, err := a.clientConfig(acct, a.log)
	if err != nil {
		return zero, err
	}
	v, err := build(cfg)
	if err != nil {
		return zero, err
	}
	a.mu.Lock()
	cache[acct.Name] = builtFor[T]{acct: acct, v: v}
	a.mu.Unlock()
	return v, nil
}
