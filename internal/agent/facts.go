package agent

import (
	"sync"
	"time"

	"k8s.io/client-go/rest"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// factsTTL is how long what serving an account learnt (client settings,
// API server facts, discovery) is reused by the next session's runner
// instead of asked again: a reconnection of an agent serving a thousand
// accounts then costs a thousand resumed watches, not tens of thousands of
// probe and discovery requests. CRD events and the periodic rediscovery
// still run discovery as before.
const factsTTL = rediscoverEvery

// accountFacts is what a session's runner learnt about an account, valid
// for the account's settings that affect streaming (not its permissions).
type accountFacts struct {
	acct         Account
	cfg          *rest.Config
	src          *configSource // what cfg's clients follow; nil: nothing
	info         *kubesvcv1.AccountInfo
	keys         []*kubesvcv1.StreamKey // nil: not discovered (or partly)
	probedAt     time.Time
	discoveredAt time.Time
}

// factsCache holds accountFacts by account name.
type factsCache struct {
	mu sync.Mutex // guards m and refusals
	m  map[string]*accountFacts
	// refusals remembers, by account name, the streams whose lists are
	// refused and the problems last logged: a new session (a control-plane
	// reconnection) neither logs them again nor restarts their backoff,
	// while the account's streaming settings are unchanged.
	refusals map[string]*accountRefusals
}

// accountRefusals is what an account's sessions remember of its refusals.
type accountRefusals struct {
	acct    Account
	streams map[string]refusal // by streamID
	logged  string             // the status message last logged
}

// refusal is a stream's list refused: the error, and how many times.
type refusal struct {
	msg      string
	failures int
}

func newFactsCache() *factsCache {
	return &factsCache{m: map[string]*accountFacts{}, refusals: map[string]*accountRefusals{}}
}

// refusalsOf returns acct's refusals, new ones if its settings changed.
// c.mu must be held.
func (c *factsCache) refusalsOf(acct Account) *accountRefusals {
	r := c.refusals[acct.Name]
	if r == nil || !r.acct.sameStreaming(acct) {
		r = &accountRefusals{acct: acct, streams: map[string]refusal{}}
		c.refusals[acct.Name] = r
	}
	return r
}

// refused returns the refusal remembered for stream id of acct.
func (c *factsCache) refused(acct Account, id string) refusal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusalsOf(acct).streams[id]
}

// setRefused remembers (msg non-empty) or forgets stream id's refusal.
func (c *factsCache) setRefused(acct Account, id string, r refusal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.msg == "" {
		delete(c.refusalsOf(acct).streams, id)
		return
	}
	c.refusalsOf(acct).streams[id] = r
}

// logStatus records msg as acct's status last logged, and reports
// whether it differs from the one before.
func (c *factsCache) logStatus(acct Account, msg string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.refusalsOf(acct)
	changed := r.logged != msg
	r.logged = msg
	return changed
}

// get returns fresh facts of acct (same settings), or nil.
func (c *factsCache) get(acct Account) *accountFacts {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.m[acct.Name]
	if f == nil || !f.acct.sameStreaming(acct) || time.Since(f.probedAt) > factsTTL {
		return nil
	}
	cp := *f
	if time.Since(f.discoveredAt) > factsTTL {
		cp.keys = nil
	}
	return &cp
}

// probed records a fresh connection's settings and API server facts.
func (c *factsCache) probed(acct Account, cfg *rest.Config, src *configSource, info *kubesvcv1.AccountInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.m[acct.Name]
	if f == nil || !f.acct.sameStreaming(acct) {
		f = &accountFacts{acct: acct}
		c.m[acct.Name] = f
	}
	f.cfg, f.src, f.info, f.probedAt = cfg, src, info, time.Now()
}

// discovered records a complete discovery of acct's streams.
func (c *factsCache) discovered(acct Account, keys []*kubesvcv1.StreamKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.m[acct.Name]; f != nil && f.acct.sameStreaming(acct) {
		f.keys, f.discoveredAt = keys, time.Now()
	}
}

// forget drops the facts of accounts no longer served.
func (c *factsCache) forget(keep func(name string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.m {
		if !keep(name) {
			delete(c.m, name)
		}
	}
	for name := range c.refusals {
		if !keep(name) {
			delete(c.refusals, name)
		}
	}
}
