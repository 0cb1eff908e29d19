package controlplane

import (
	"context"
	"time"
)

// runCleanup drops from the cache the accounts that no agent connected to
// the cluster has served for AccountCleanup
// (kubesvc.cache.accountCleanupFrequencySeconds): an agent that comes back
// sooner resumes where it left off; one that never comes back does not
// leave its accounts' objects in the cache for ever. Every replica runs
// it; deleting an account twice is harmless.
func (s *Server) runCleanup(ctx context.Context) error {
	if s.cfg.AccountCleanup < 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(min(s.cfg.AccountCleanup/4, 30*time.Second))
	defer t.Stop()
	unserved := map[string]time.Time{} // account -> since when nobody serves it
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.cleanup(ctx, unserved, time.Now())
	}
}

func (s *Server) cleanup(ctx context.Context, unserved map[string]time.Time, now time.Time) {
	cached, err := s.store.CachedAccounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cleanupErrs.Failed(err)
		}
		return
	}
	s.cleanupErrs.OK()
	served := map[string]bool{}
	for _, a := range s.ConnectedAgents() {
		for _, name := range a.Accounts {
			served[name] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range cached {
		seen[c.Account] = true
		if served[c.Account] {
			delete(unserved, c.Account)
			continue
		}
		since, ok := unserved[c.Account]
		if !ok {
			unserved[c.Account] = now
			continue
		}
		if now.Sub(since) < s.cfg.AccountCleanup {
			continue
		}
		// The cluster view may lag by an assignment interval: ask the
		// database before dropping anything.
		if others, err := s.servedByOthers(ctx, c.Account, ""); err != nil || others {
			if others {
				delete(unserved, c.Account)
			}
			continue
		}
		if err := s.store.DeleteAccount(ctx, c.Account); err != nil {
			s.log.Warn("cache cleanup: drop account", "account", c.Account, "err", err)
			continue
		}
		delete(unserved, c.Account)
		s.commits.publishAll()
		s.log.Info("cache cleanup: no agent served the account for the cleanup period; dropped it from the cache",
			"account", c.Account, "objects", c.Objects, "unservedFor", now.Sub(since).Round(time.Second))
	}
	for a := range unserved {
		if !seen[a] {
			delete(unserved, a)
		}
	}
}
