package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqliteBusyTimeoutMs bounds how long a connection waits for a lock held by
// another process (within this process the single writer connection
// serializes writes, so it only matters across processes).
const sqliteBusyTimeoutMs = 10000

// OpenSQLite opens (creating it and its parent directories if needed) the
// SQLite database at path and migrates its schema.
//
// The database runs in WAL mode with synchronous=NORMAL. Writes go through
// a single connection whose transactions start with BEGIN IMMEDIATE, so
// writers queue in the pool instead of failing with SQLITE_BUSY; reads use a
// separate pool of read-only connections and never wait for the writer.
func OpenSQLite(ctx context.Context, path string, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("store: sqlite: empty database path")
	}
	if strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("store: sqlite: unsupported database path %q (a file path without '?' is expected)", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: sqlite: create directory for %s: %w", path, err)
	}

	writer, err := openSQLitePool(ctx, path, 1, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMs),
			"journal_mode(WAL)",
			"synchronous(NORMAL)",
			// Checkpoints run in the background (checkpointLoop), not
			// inside the commit that crosses the threshold.
			"wal_autocheckpoint(0)",
		},
		"_txlock": {"immediate"},
	})
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: open writer %s: %w", path, err)
	}
	d := sqliteDialect()
	if err := migrate(ctx, writer, d, log); err != nil {
		_ = writer.Close()
		return nil, err
	}

	readers := max(4, runtime.GOMAXPROCS(0))
	reader, err := openSQLitePool(ctx, path, readers, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMs),
			"query_only(1)",
		},
	})
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("store: sqlite: open readers %s: %w", path, err)
	}
	checkpointer, err := openSQLitePool(ctx, path, 1, url.Values{
		"_pragma": {fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMs)},
	})
	if err != nil {
		_ = writer.Close()
		_ = reader.Close()
		return nil, fmt.Errorf("store: sqlite: open checkpointer %s: %w", path, err)
	}
	log.Info("store: sqlite opened", "path", path, "schema", latestVersion(), "readers", readers)
	st := newSQLStore(d, writer, reader, log)
	bg, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkpointLoop(bg, checkpointer, log)
	}()
	st.stopBackground = func() {
		cancel()
		<-done
		_ = checkpointer.Close()
	}
	return st, nil
}

// checkpointInterval is how often the WAL is copied back into the database
// file. A checkpoint writes and syncs the database file; done here, in its
// own connection and in PASSIVE mode, it never holds up a commit.
const checkpointInterval = time.Second

func checkpointLoop(ctx context.Context, db *sql.DB, log *slog.Logger) {
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// A last checkpoint leaves a compact database behind.
			if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				log.Warn("store: sqlite: final checkpoint", "err", err)
			}
			return
		case <-t.C:
			if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && ctx.Err() == nil {
				log.Warn("store: sqlite: checkpoint", "err", err)
			}
		}
	}
}

// openSQLitePool opens a pool of at most n connections to path, each
// configured by params, and checks that a connection can be made.
func openSQLitePool(ctx context.Context, path string, n int, params url.Values) (*sql.DB, error) {
	db, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
