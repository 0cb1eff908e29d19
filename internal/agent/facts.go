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
	info         *kubesvcv1.AccountInfo
	keys         []*kubesvcv1.StreamKey // nil: not discovered (or partly)
	probedAt     time.Time
	discoveredAt time.Time
}

// factsCache holds accountFacts by account name.
type factsCache struct {
	mu sync.Mutex // guards m
	m  map[string]*accountFacts
}

func newFactsCache() *factsCache { return &factsCache{m: map[string]*accountFacts{}} }

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
func (c *factsCache) probed(acct Account, cfg *rest.Config, info *kubesvcv1.AccountInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.m[acct.Name]
	if f == nil || !f.acct.sameStreaming(acct) {
		f = &accountFacts{acct: acct}
		c.m[acct.Name] = f
	}
	f.cfg, f.info, f.probedAt = cfg, info, time.Now()
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
}
