package cdaccounts

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// env is one database with the control plane's store and Clouddriver's
// tables, and a Dynamic Accounts manager on it (its reconciler not
// running: the tests look at the intents it records).
type env struct {
	dialect string
	dsn     string // or SQLite path
	st      store.Store
	db      *DB     // Clouddriver's tables, as the service uses them
	raw     *sql.DB // the same database, for SQL written as Clouddriver does
	mgr     *dynaccounts.Manager
	open    func() store.Store // another store on the same database
}

// backends runs fn on SQLite and on MariaDB (and PostgreSQL when its
// server is configured).
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "cp.db")
		open := func() store.Store {
			st, err := store.OpenSQLite(context.Background(), path, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}
		fn(t, newEnv(t, DriverSQLite, path, open))
	})
	for _, srv := range []storetest.Server{storetest.MySQL(), storetest.Postgres()} {
		t.Run(srv.Name(), func(t *testing.T) {
			t.Parallel()
			dbs := storetest.Connect(t, srv)
			dsn := dbs.Create(t, t)
			open := func() store.Store {
				st := dbs.Open(t, dsn)
				t.Cleanup(func() { _ = st.Close() })
				return st
			}
			fn(t, newEnv(t, srv.StoreDriver(), dsn, open))
		})
	}
}

func newEnv(t *testing.T, driver, dsnOrPath string, open func() store.Store) *env {
	t.Helper()
	e := &env{dialect: driver, dsn: dsnOrPath, st: open(), open: open}
	db, err := OpenDB(driver, dsnOrPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e.db, e.raw = db, db.SQL()
	e.mgr = newManager(t, e.st, "cp-1")
	return e
}

func newManager(t *testing.T, st store.Store, replica string) *dynaccounts.Manager {
	sealer, err := credentials.NewSealer()
	if err != nil {
		t.Fatal(err)
	}
	return dynaccounts.New(dynaccounts.Config{Enabled: true, ReplicaID: replica, Log: slog.New(slog.DiscardHandler)},
		st, nil, dynaccounts.NewCredentials(&credentials.Resolver{Sealer: sealer}))
}

// liquibase creates accounts and accounts_history as Clouddriver's
// Liquibase changelog (clouddriver-sql 20210927-accounts.yml) does on each
// database: Liquibase spells json as jsonb on PostgreSQL and boolean as
// BIT(1) on MySQL. SQLite (which Clouddriver does not run on) gets text.
func (e *env) liquibase(t *testing.T) {
	t.Helper()
	body, boolean, suffix, deflt := "JSON", "BOOLEAN", "", "FALSE"
	switch e.dialect {
	case DriverMySQL:
		boolean, suffix, deflt = "BIT(1)", " engine innodb DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci", "0"
	case DriverPostgres:
		body = "JSONB"
	case DriverSQLite:
		body, deflt = "TEXT", "0"
	}
	for _, q := range []string{
		`CREATE TABLE accounts (id VARCHAR(255) NOT NULL, type VARCHAR(50) NOT NULL, body ` + body + ` NOT NULL,
			created_at BIGINT NOT NULL, last_modified_at BIGINT NOT NULL, last_modified_by VARCHAR(255) NOT NULL,
			CONSTRAINT PK_ACCOUNTS PRIMARY KEY (id))` + suffix,
		`CREATE INDEX accounts_type_index ON accounts(id, type)`,
		`CREATE INDEX accounts_timestamp_index ON accounts(id, type, created_at, last_modified_at)`,
		`CREATE TABLE accounts_history (id VARCHAR(255) NOT NULL, type VARCHAR(50), body ` + body + `,
			last_modified_at BIGINT NOT NULL, version INT NOT NULL, is_deleted ` + boolean + ` DEFAULT ` + deflt + ` NOT NULL,
			CONSTRAINT PK_ACCOUNTS_HISTORY PRIMARY KEY (id, version))` + suffix,
	} {
		if _, err := e.raw.Exec(q); err != nil {
			t.Fatalf("liquibase DDL: %v\n%s", err, q)
		}
	}
}

// q rebinds a "?" query for the database.
func (e *env) q(query string) string { return e.db.rebind(query) }

// cdCreate inserts an account exactly as Clouddriver's
// SqlAccountDefinitionRepository.create does: the row, and its history
// row at version count+1, in one transaction.
func (e *env) cdCreate(t *testing.T, id, typ, body string, at int64) {
	t.Helper()
	tx, err := e.raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.Exec(e.q(`INSERT INTO accounts (id, type, body, created_at, last_modified_at, last_modified_by)
		VALUES (?, ?, ?, ?, ?, ?)`), id, typ, body, at, at, "anonymous"); err != nil {
		t.Fatal(err)
	}
	e.cdHistory(t, tx, id, typ, body, at, false)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// cdUpdate is Clouddriver's update: body, last_modified_at and _by, and a
// history row.
func (e *env) cdUpdate(t *testing.T, id, typ, body string, at int64) {
	t.Helper()
	tx, err := e.raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.Exec(e.q(`UPDATE accounts SET body = ?, last_modified_at = ?, last_modified_by = ? WHERE id = ?`),
		body, at, "alice", id); err != nil {
		t.Fatal(err)
	}
	e.cdHistory(t, tx, id, typ, body, at, false)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// cdDelete is Clouddriver's delete: a history row marked is_deleted,
// without type and body, and the row deleted.
func (e *env) cdDelete(t *testing.T, id string, at int64) {
	t.Helper()
	tx, err := e.raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRow(e.q(`SELECT COUNT(*) FROM accounts_history WHERE id = ?`), id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(e.q(`INSERT INTO accounts_history (id, is_deleted, last_modified_at, version) VALUES (?, ?, ?, ?)`),
		id, true, at, n+1); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(e.q(`DELETE FROM accounts WHERE id = ?`), id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) cdHistory(t *testing.T, tx *sql.Tx, id, typ, body string, at int64, deleted bool) {
	t.Helper()
	var n int
	if err := tx.QueryRow(e.q(`SELECT COUNT(*) FROM accounts_history WHERE id = ?`), id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(e.q(`INSERT INTO accounts_history (id, type, body, last_modified_at, version, is_deleted)
		VALUES (?, ?, ?, ?, ?, ?)`), id, typ, body, at, n+1, deleted); err != nil {
		t.Fatal(err)
	}
}

// state returns the kubesvc_accounts state of name ("" if absent).
func (e *env) state(t *testing.T, name string) string {
	t.Helper()
	a, err := e.st.GetAccount(context.Background(), name)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return ""
		}
		t.Fatal(err)
	}
	return a.State
}

func ms(t time.Time) int64 { return t.UnixMilli() }
