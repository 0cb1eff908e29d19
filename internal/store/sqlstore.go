package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Table names of the cache.
const (
	streamsTable = "kubesvc_cache_streams"
	objectsTable = "kubesvc_cache_objects"
)

// sqlStore implements Store on database/sql for any dialect. Writes go
// through w, reads through r; a backend whose reads do not need isolating
// from the writer (MySQL, PostgreSQL) passes the same pool twice.
type sqlStore struct {
	d   dialect
	w   *sql.DB
	r   *sql.DB
	log *slog.Logger
	now func() time.Time
	// stopBackground ends the dialect's background work (SQLite's WAL
	// checkpointer) and waits for it; nil when there is none.
	stopBackground func()

	// group queues concurrent ApplyChanges calls (d.groupCommit).
	group committer

	stmtMu sync.Mutex // guards stmts and rstmts
	stmts  map[string]*sql.Stmt
	// rstmts are cache reads prepared on the reader pool, by query (the
	// read API's queries come in a few dozen shapes at most).
	rstmts map[string]*sql.Stmt
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(d dialect, w, r *sql.DB, log *slog.Logger) *sqlStore {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &sqlStore{d: d, w: w, r: r, log: log, now: time.Now}
}

// writeStmts returns the statements of ApplyChanges prepared on the writer
// pool, keyed by their ?-placeholder query, preparing them the first time.
// It must not be called inside a write transaction.
func (s *sqlStore) writeStmts(ctx context.Context) (map[string]*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.stmts != nil {
		return s.stmts, nil
	}
	stmts := map[string]*sql.Stmt{}
	for _, q := range s.d.writeQueries() {
		st, err := s.w.PrepareContext(ctx, s.d.rebind(q))
		if err != nil {
			for _, p := range stmts {
				_ = p.Close()
			}
			return nil, fmt.Errorf("store: prepare: %w", err)
		}
		stmts[q] = st
	}
	s.stmts = stmts
	return stmts, nil
}

// readStmt returns q (already rebound) prepared on the reader pool,
// preparing it the first time: a read then skips parsing and planning,
// most of the cost of a single-row lookup on SQLite.
func (s *sqlStore) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.rstmts[q]; ok {
		return st, nil
	}
	st, err := s.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	if s.rstmts == nil {
		s.rstmts = map[string]*sql.Stmt{}
	}
	s.rstmts[q] = st
	return st, nil
}

// Close stops background work and closes both pools.
// CheckSchema implements Store.
func (s *sqlStore) CheckSchema(ctx context.Context) error {
	return checkRunning(ctx, s.r, s.d, latestVersion())
}

func (s *sqlStore) Close() error {
	if s.stopBackground != nil {
		s.stopBackground()
	}
	var errs []error
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close statement: %w", err))
		}
	}
	for _, st := range s.rstmts {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close statement: %w", err))
		}
	}
	s.stmts, s.rstmts = nil, nil
	s.stmtMu.Unlock()
	if s.r != s.w {
		if err := s.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close readers: %w", err))
		}
	}
	if err := s.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: close writer: %w", err))
	}
	return errors.Join(errs...)
}

// txAttempts bounds how often inTx runs a transaction that lost a race
// (retryableTxError) before returning the error.
const txAttempts = 8

// inTx runs fn in a transaction of db, committing if it returns nil.
//
// A transaction rolled back by the database because it lost a race with a
// concurrent one (a deadlock, a serialization failure: see
// retryableTxError) is run again, up to txAttempts times with a short
// random backoff. So fn may be called more than once: it must keep no state
// across calls (results it sets outside are overwritten by the last call).
func inTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	return retryTx(ctx, func() error { return inTxOnce(ctx, db, opts, fn) })
}

// exec runs one statement on its own (its own implicit transaction),
// retrying deadlocks and serialization failures as inTx does, but not a
// unique violation, which the same statement would meet again (inside a
// transaction it may come from a read that lost a race): for writes that
// need no more than one statement, it saves a transaction's BEGIN and
// COMMIT.
func exec(ctx context.Context, db *sql.DB, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := retryTx(ctx, func() (err error) {
		res, err = db.ExecContext(ctx, q, args...)
		if err != nil && isUniqueViolation(err) {
			return permanentTxError{err}
		}
		return err
	})
	var p permanentTxError
	if errors.As(err, &p) {
		err = p.err
	}
	return res, err
}

// permanentTxError is an error that retryTx must not retry.
type permanentTxError struct{ err error }

func (e permanentTxError) Error() string { return e.err.Error() }
func (e permanentTxError) Unwrap() error { return e.err }

// retryTx runs attempt until it succeeds, fails with an error that a new
// attempt would not fix, or txAttempts are spent.
func retryTx(ctx context.Context, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		var permanent permanentTxError
		if err == nil || n == txAttempts || ctx.Err() != nil || errors.As(err, &permanent) || !retryableTxError(err) {
			return err
		}
		// 2.5-5 ms, then doubling up to 160-320 ms.
		d := time.Duration(5<<min(n-1, 6)) * time.Millisecond
		t := time.NewTimer(d/2 + rand.N(d/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// inTxOnce runs fn in one transaction of db.
func inTxOnce(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback() // or the connection stays in the transaction
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// DeleteAccount drops every object and stream of an account.
func (s *sqlStore) DeleteAccount(ctx context.Context, account string) error {
	return inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		for _, table := range []string{objectsTable, streamsTable} {
			q := s.d.rebind(`DELETE FROM ` + table + ` WHERE account = ?`)
			if _, err := tx.ExecContext(ctx, q, account); err != nil {
				return fmt.Errorf("store: delete account %q from %s: %w", account, table, err)
			}
		}
		return nil
	})
}
