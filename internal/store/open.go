package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"time"
)

// Driver names accepted by Open (the control plane's sql.driver).
const (
	DriverSQLite   = "sqlite"
	DriverMySQL    = "mysql"
	DriverPostgres = "postgres"
)

// Open opens the store of driver: for "sqlite", dsnOrPath is the database
// file (OpenSQLite); for "mysql" (MySQL, MariaDB) and "postgres" it is a
// data source name (OpenMySQL, OpenPostgres).
func Open(ctx context.Context, driver, dsnOrPath string, log *slog.Logger) (Store, error) {
	switch driver {
	case DriverSQLite:
		return OpenSQLite(ctx, dsnOrPath, log)
	case DriverMySQL:
		return OpenMySQL(ctx, dsnOrPath, log)
	case DriverPostgres:
		return OpenPostgres(ctx, dsnOrPath, log)
	}
	return nil, fmt.Errorf("store: unknown driver %q (want %s, %s or %s)", driver, DriverSQLite, DriverMySQL, DriverPostgres)
}

// Pool sizes of the server backends, where reads and writes share one pool.
// Every batch an agent session writes holds a connection for its
// transaction, and reads (REST, Welcome) take one each; past maxOpen they
// queue in the pool rather than load the server.
const (
	serverMaxOpenConns    = 20
	serverMaxIdleConns    = 10
	serverConnMaxLifetime = 30 * time.Minute // below the servers' idle timeouts
	serverConnMaxIdleTime = 5 * time.Minute
)

func configureServerPool(db *sql.DB) {
	db.SetMaxOpenConns(serverMaxOpenConns)
	db.SetMaxIdleConns(serverMaxIdleConns)
	db.SetConnMaxLifetime(serverConnMaxLifetime)
	db.SetConnMaxIdleTime(serverConnMaxIdleTime)
}

// sessionLock takes a lock held by the session of conn, and returns its
// release.
type sessionLock func(ctx context.Context, conn *sql.Conn, log *slog.Logger) (release func(context.Context) error, err error)

// migrateLocked migrates db while holding the dialect's migration lock, on
// a connection of its own: another process opening the same database waits
// for the migration to finish instead of running the same DDL at once.
func migrateLocked(ctx context.Context, db *sql.DB, d dialect, log *slog.Logger, lock sessionLock) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: %s: migration lock: %w", d.name, err)
	}
	defer conn.Close()
	release, err := lock(ctx, conn, log)
	if err != nil {
		return err
	}
	defer func() {
		// Released even if ctx is done; a connection that cannot release
		// it is broken, and its session (and lock) ends when it closes.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := release(rctx); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discard it
			if err == nil {
				err = fmt.Errorf("store: %s: release the migration lock: %w", d.name, rerr)
			}
		}
	}()
	return migrate(ctx, db, d, log)
}
