package cdaccounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
)

// ScanStats counts what the scans of one replica did.
type ScanStats struct {
	Scans, Migrated, Updated, Reactivated, Deactivated int64
}

// scanner is the automatic migration of one replica.
type scanner struct {
	cfg      Config
	patterns []*regexp.Regexp
	db       *DB
	st       Store
	life     Lifecycle

	scans, migrated, updated, reactivated, deactivated atomic.Int64
	warned                                             map[string]string // row id -> problem last logged
}

// run scans every ScanFrequency while it holds the scan lease, and
// releases the lease when ctx ends.
func (s *scanner) run(ctx context.Context) {
	log := s.cfg.Log
	held := false
	defer func() {
		if held {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.st.ReleaseLease(rctx, ScanLease, s.cfg.ReplicaID); err != nil {
				log.Warn("clouddriver accounts: release the scan lease", "err", err)
			}
		}
	}()
	t := time.NewTicker(s.cfg.ScanFrequency)
	defer t.Stop()
	for {
		ok, err := s.st.TryAcquireLease(ctx, ScanLease, s.cfg.ReplicaID, s.cfg.LeaseTTL)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("clouddriver accounts: scan lease", "err", err)
		case ok != held:
			log.Info("clouddriver accounts: scan lease", "held", ok)
		}
		held = ok && err == nil
		if held {
			if err := s.scan(ctx); err != nil && ctx.Err() == nil {
				log.Error("clouddriver accounts: scan", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *scanner) matches(name string) bool {
	for _, re := range s.patterns {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// scan is one round. For each Kubernetes row of Clouddriver's accounts
// table whose name matches a pattern:
//   - not in kubesvc_accounts: imported (TO_MIGRATE, then ACTIVE through
//     the reconciler);
//   - taken before and changed since (last_modified_at): its new
//     definition replaces the old one and reaches the agent;
//   - taken before, deleted, and back: updated and activated again.
//
// At most ScanBatchSize of these per round. Accounts taken from the table
// whose row is gone are deactivated (all of them, every round).
// Accounts of kubesvc_accounts not taken from the table (created with the
// REST API) are never touched.
func (s *scanner) scan(ctx context.Context) error {
	s.scans.Add(1)
	if ok, err := s.db.TablesExist(ctx); err != nil || !ok {
		if err == nil && s.warnOnce("", "missing") {
			s.cfg.Log.Warn("clouddriver accounts: no accounts table in the Clouddriver database; nothing to scan")
		}
		return err
	}
	rows, err := s.db.ListByType(ctx, KubernetesType)
	if err != nil {
		return err
	}
	tracked, err := s.st.ListMigratedAccounts(ctx)
	if err != nil {
		return err
	}
	accounts, err := s.st.ListAccounts(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]store.MigratedAccount, len(tracked))
	for _, m := range tracked {
		byName[m.Name] = m
	}
	exists := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		exists[a.Name] = true
	}
	present := make(map[string]bool, len(rows))
	budget := s.cfg.ScanBatchSize
	for _, r := range rows {
		present[r.ID] = true
		m, isTracked := byName[r.ID]
		if !s.matches(r.ID) || budget == 0 || (exists[r.ID] && (!isTracked || (!m.Deleted && m.SourceModifiedAt == r.LastModifiedAt))) {
			continue
		}
		done, err := s.take(ctx, r, exists[r.ID], m)
		if err != nil {
			return err
		}
		if done {
			budget--
		}
	}
	for _, m := range tracked {
		if present[m.Name] {
			continue
		}
		if err := s.gone(ctx, m, exists[m.Name]); err != nil {
			return err
		}
	}
	return nil
}

// take migrates, updates or reactivates the account of row r; it reports
// whether it did. A row it cannot use (malformed, or credentials refused
// on an update) is logged once and skipped.
func (s *scanner) take(ctx context.Context, r Row, exists bool, m store.MigratedAccount) (bool, error) {
	b, err := parseBody(r.Body)
	if err == nil && b.name != r.ID {
		err = fmt.Errorf("%w: the definition is named %q", errBadBody, b.name)
	}
	var def dynaccounts.Definition
	if err == nil {
		def, err = b.definition()
	}
	if err == nil && exists {
		// An import records unusable credentials as FAILED; an update
		// keeps the working definition instead.
		err = s.life.CheckCredentials(ctx, def)
	}
	if err != nil {
		if s.warnOnce(r.ID, err.Error()) {
			s.cfg.Log.Warn("clouddriver accounts: row skipped", "account", r.ID, "err", err)
		}
		return false, nil
	}
	delete(s.warned, r.ID)
	what := "migrated"
	switch {
	case !exists:
		_, err = s.life.Import(ctx, def)
		if errors.Is(err, store.ErrExists) {
			return false, nil // created meanwhile (REST, interceptor, another replica)
		}
	case m.Deleted:
		what = "reactivated"
		_, err = s.life.Activate(ctx, def)
	default:
		what = "updated"
		err = s.life.Update(ctx, def)
	}
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, dynaccounts.ErrDeleting):
		return false, nil // changed meanwhile; the next round sees it
	case err != nil:
		return false, err
	}
	map[string]*atomic.Int64{"migrated": &s.migrated, "updated": &s.updated, "reactivated": &s.reactivated}[what].Add(1)
	s.cfg.Log.Info("clouddriver account "+what, "account", r.ID)
	return true, s.st.PutMigratedAccount(ctx, store.MigratedAccount{Name: r.ID, SourceModifiedAt: r.LastModifiedAt})
}

// gone handles a taken account whose row left Clouddriver's table: it is
// deactivated (kept INACTIVE in kubesvc_accounts) once.
func (s *scanner) gone(ctx context.Context, m store.MigratedAccount, exists bool) error {
	if !exists {
		return s.st.DeleteMigratedAccount(ctx, m.Name) // deleted in kubesvc_accounts too
	}
	if m.Deleted {
		return nil
	}
	if err := s.life.Deactivate(ctx, m.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.deactivated.Add(1)
	s.cfg.Log.Info("clouddriver account deleted: deactivated", "account", m.Name)
	m.Deleted = true
	return s.st.PutMigratedAccount(ctx, m)
}

func (s *scanner) warnOnce(id, problem string) bool {
	if s.warned[id] == problem {
		return false
	}
	s.warned[id] = problem
	return true
}

func (s *scanner) stats() ScanStats {
	return ScanStats{Scans: s.scans.Load(), Migrated: s.migrated.Load(), Updated: s.updated.Load(),
		Reactivated: s.reactivated.Load(), Deactivated: s.deactivated.Load()}
}
