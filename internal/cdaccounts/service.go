package cdaccounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

// Service is the migration of Clouddriver's accounts: the scan and the
// /credentials interceptor. Register it with the control plane server
// (Server.Extend); Run closes the database when it ends.
type Service struct {
	cfg  Config
	db   *DB
	st   Store
	life Lifecycle
	scan *scanner // nil without name patterns
	cd   *url.URL // nil: non-Kubernetes accounts are stored here
	prox *httputil.ReverseProxy

	// gate: handlers hold it shared while they use the database; Run
	// takes it exclusively to close the database after the last one.
	gate   sync.RWMutex
	closed bool
}

// New returns the service. db is the database of Clouddriver's tables;
// the service owns it (Run closes it). Nothing runs unless the Dynamic
// Accounts feature is enabled and the configuration asks for a scan
// (name patterns) or the interceptor.
func New(cfg Config, db *DB, st Store, life Lifecycle) (*Service, error) {
	cfg.defaults()
	patterns, err := compilePatterns(cfg.NamePatterns)
	if err != nil {
		return nil, err
	}
	cd, err := parseURL(cfg.ClouddriverURL)
	if err != nil {
		return nil, err
	}
	if (len(patterns) > 0 || cfg.Interceptor) && cfg.ReplicaID == "" {
		return nil, errors.New("cdaccounts: a replica id is required")
	}
	s := &Service{cfg: cfg, db: db, st: st, life: life, cd: cd}
	if len(patterns) > 0 {
		s.scan = &scanner{cfg: cfg, patterns: patterns, db: db, st: st, life: life, warned: map[string]string{}}
	}
	if cd != nil {
		s.prox = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(cd)
			r.SetXForwarded()
		}}
	}
	return s, nil
}

func (s *Service) active() bool { return s.life.Enabled() }

// Run creates Clouddriver's tables if the interceptor needs them, scans
// until ctx ends, then waits for the interceptor's requests in flight and
// closes the database.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		s.gate.Lock()
		s.closed = true
		s.gate.Unlock()
		if err := s.db.Close(); err != nil {
			s.cfg.Log.Warn("clouddriver accounts: close the database", "err", err)
		}
	}()
	if !s.active() || (s.scan == nil && !s.cfg.Interceptor) {
		<-ctx.Done()
		return nil
	}
	if s.cfg.Interceptor {
		created, err := s.db.EnsureTables(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("kubesvc.dynamicAccounts.interceptor: %w", err)
		}
		if created {
			s.cfg.Log.Info("clouddriver accounts: created the accounts and accounts_history tables (Clouddriver's schema)")
		}
	}
	s.cfg.Log.Info("clouddriver accounts: started", "scan", s.scan != nil, "interceptor", s.cfg.Interceptor,
		"scanFrequency", s.cfg.ScanFrequency, "scanBatchSize", s.cfg.ScanBatchSize, "proxy", s.cd != nil)
	if s.scan == nil {
		<-ctx.Done()
		return nil
	}
	s.scan.run(ctx)
	return nil
}

// Stats returns what this replica's scans did (zero without a scan).
func (s *Service) Stats() ScanStats {
	if s.scan == nil {
		return ScanStats{}
	}
	return s.scan.stats()
}

// Routes registers Clouddriver's /credentials endpoints when the
// interceptor is enabled.
func (s *Service) Routes(mux *http.ServeMux) {
	if !s.cfg.Interceptor || !s.active() {
		return
	}
	mux.HandleFunc("POST /credentials", s.guard(s.post))
	mux.HandleFunc("PUT /credentials", s.guard(s.save))
	mux.HandleFunc("PUT /credentials/{accountName}", s.guard(s.put))
	mux.HandleFunc("DELETE /credentials/{accountName}", s.guard(s.delete))
	// GET /credentials/type/{accountType} and /credentials/{accountName}/history
	// (one pattern: two would overlap on /credentials/type/history).
	mux.HandleFunc("GET /credentials/{first}/{second}", s.guard(s.getTwo))
	// Everything else of Clouddriver's API under /credentials (the list
	// of credentials it loaded, one account's details) is Clouddriver's.
	mux.HandleFunc("/credentials", s.guard(s.passThrough))
	mux.HandleFunc("/credentials/", s.guard(s.passThrough))
}

// guard runs h while the database is open.
func (s *Service) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.gate.RLock()
		defer s.gate.RUnlock()
		if s.closed {
			writeError(w, r, http.StatusServiceUnavailable, "the control plane is stopping")
			return
		}
		h(w, r)
	}
}
