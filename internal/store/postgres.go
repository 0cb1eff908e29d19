package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresDialect is PostgreSQL (13 and later).
//
// Key columns use the "C" collation: comparisons and ORDER BY work on
// bytes, like SQLite and Go, whatever the database's locale.
func postgresDialect() dialect {
	return dialect{
		name:          "postgres",
		numbered:      true,
		upsert:        onConflict,
		key:           `VARCHAR(253) COLLATE "C" NOT NULL`,
		text:          "VARCHAR(253) NOT NULL DEFAULT ''",
		largeText:     "TEXT NOT NULL",
		blob:          "BYTEA NOT NULL",
		bigint:        "BIGINT NOT NULL",
		boolean:       "BOOLEAN NOT NULL",
		forUpdate:     " FOR UPDATE",
		forShare:      " FOR SHARE",
		readIsolation: sql.LevelRepeatableRead,
	}
}

// PostgreSQL SQLSTATE codes.
const (
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgUniqueViolation      = "23505"
)

// postgresRetryable recognises a transaction rolled back by a deadlock or a
// serialization failure, or a duplicate key inserted by a concurrent
// transaction (see retryableTxError).
func postgresRetryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case pgSerializationFailure, pgDeadlockDetected, pgUniqueViolation:
		return true
	}
	return false
}

// postgresConnectTimeout is the connect timeout when the DSN sets none.
const postgresConnectTimeout = 10 * time.Second

// postgresIdleInTransaction is the server-side idle_in_transaction_session_timeout
// of the store's connections (see OpenPostgres).
const postgresIdleInTransaction = "15s"

// OpenPostgres opens the PostgreSQL database named by dsn, a URL or
// keyword/value string as libpq takes them (and the PG* environment
// variables), e.g.
//
//	postgres://kubesvc:secret@db.example:5432/kubesvc?sslmode=verify-full
//	host=/run/postgresql dbname=kubesvc user=kubesvc
//
// and migrates its schema. The database must exist; the user needs to
// create tables in its schema (owning the database is simplest). Reads and
// writes share one pool.
func OpenPostgres(ctx context.Context, dsn string, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = postgresConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "kubesvc"
	}
	// A replica cut off the network in the middle of a transaction leaves
	// it open on the server, with its row locks, until TCP gives up
	// (hours): the server ends it after this instead, so the replicas
	// taking over are not blocked behind it. Every transaction here is
	// short.
	if _, ok := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = postgresIdleInTransaction
	}
	db := stdlib.OpenDB(*cfg)
	configureServerPool(db)
	where := fmt.Sprintf("%s on %s:%d", cfg.Database, cfg.Host, cfg.Port)
	var version string
	if err := db.QueryRowContext(ctx, `SHOW server_version`).Scan(&version); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: postgres: connect to %s: %w", where, err)
	}
	d := postgresDialect()
	if err := migrateLocked(ctx, db, d, log, postgresLock); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w (database %s)", err, where)
	}
	log.Info("store: postgres opened", "database", cfg.Database, "host", cfg.Host, "port", cfg.Port,
		"server", version, "schema", latestVersion())
	return newSQLStore(d, db, db, log), nil
}

// postgresLockKey is the advisory lock held while migrating ("kubesvc" and
// 1). Advisory locks are per database.
const postgresLockKey int64 = 0x6b75626573766301

// postgresLock takes the migration lock (pg_advisory_lock) on conn and
// returns its release.
func postgresLock(ctx context.Context, conn *sql.Conn, log *slog.Logger) (func(context.Context) error, error) {
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, postgresLockKey).Scan(&got); err != nil {
		return nil, fmt.Errorf("store: postgres: take the migration lock: %w", err)
	}
	if !got {
		log.Info("store: postgres: waiting for another process migrating the schema")
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, postgresLockKey); err != nil {
			return nil, fmt.Errorf("store: postgres: take the migration lock: %w", err)
		}
	}
	return func(ctx context.Context) error {
		_, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, postgresLockKey)
		return err
	}, nil
}
