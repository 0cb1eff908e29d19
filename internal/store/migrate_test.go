package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// logTo returns a logger writing text lines to b.
func logTo(b *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Binaries of different versions, played by migration lists, open one
// SQLite database: an older binary runs against a newer schema only while
// every migration it does not know is compatible with it.
func TestOlderBinaryAgainstNewerSchema(t *testing.T) {
	ctx := context.Background()
	db := sqliteDB(t)
	d := sqliteDialect()
	current := migrations()
	v := current[len(current)-1].version
	table := func(n int64) func(dialect) []string {
		return func(d dialect) []string {
			return []string{fmt.Sprintf(`CREATE TABLE kubesvc_future_%d (id %s, PRIMARY KEY (id))`, n, d.key)}
		}
	}
	additive := migration{version: v + 1, name: "an additive table", compatibleFrom: v, up: table(1)}
	breaking := migration{version: v + 2, name: "a breaking change", up: table(2)}
	onlyNewest := migration{version: v + 2, name: "for the newest only", compatibleFrom: v + 1, up: table(2)}
	open := func(all []migration) (string, error) {
		var b bytes.Buffer
		err := migrateWith(ctx, db, d, logTo(&b), all)
		return b.String(), err
	}
	rows := func() (n int64) {
		if err := db.QueryRow(`SELECT COUNT(*) FROM ` + migrationsTable).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if _, err := open(append(current[:len(current):len(current)], additive)); err != nil {
		t.Fatalf("binary of version %d: %v", v+1, err)
	}
	logged, err := open(current)
	if err != nil {
		t.Fatalf("binary of version %d against the compatible schema %d: %v", v, v+1, err)
	}
	if n := strings.Count(logged, "\n"); n != 1 || !strings.Contains(logged, "level=INFO") ||
		!strings.Contains(logged, "newer than this binary, and compatible") {
		t.Errorf("binary of version %d against the compatible schema logged %q, want one INFO line saying so", v, logged)
	}
	if n := rows(); n != v+1 {
		t.Errorf("%d migrations recorded after the older binary started, want %d: it must not migrate", n, v+1)
	}

	var from sql.NullInt64
	var name string
	if err := db.QueryRow(`SELECT name, compatible_from FROM `+migrationsTable+` WHERE version = ?`, v+1).Scan(&name, &from); err != nil ||
		name != additive.name || from != (sql.NullInt64{Int64: v, Valid: true}) {
		t.Errorf("migration %d recorded as %q, %+v (%v); want %q, %d", v+1, name, from, err, additive.name, v)
	}

	newer := append(current[:len(current):len(current)], additive, onlyNewest)
	if _, err := open(newer); err != nil {
		t.Fatalf("binary of version %d: %v", v+2, err)
	}
	if _, err := open(newer[:len(newer)-1]); err != nil {
		t.Errorf("binary of version %d against schema %d, compatible from %d: %v", v+1, v+2, v+1, err)
	}
	_, err = open(current)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf(`migration %d ("for the newest only")`, v+2)) {
		t.Errorf("binary of version %d against schema %d, compatible from %d: %v; want ErrSchemaTooNew naming migration %d", v, v+2, v+1, err, v+2)
	}

	// A breaking change, recorded as not compatible (NULL).
	if _, err := db.Exec(`DELETE FROM `+migrationsTable+` WHERE version = ?`, v+2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE kubesvc_future_2`); err != nil {
		t.Fatal(err)
	}
	if _, err := open(append(current[:len(current):len(current)], additive, breaking)); err != nil {
		t.Fatalf("binary of version %d: %v", v+2, err)
	}
	if err := db.QueryRow(`SELECT compatible_from FROM `+migrationsTable+` WHERE version = ?`, v+2).Scan(&from); err != nil || from.Valid {
		t.Errorf("the breaking migration recorded compatible_from %+v (%v), want NULL", from, err)
	}
	for _, older := range [][]migration{current, newer[:len(newer)-1]} {
		_, err := open(older)
		if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf(`migration %d ("a breaking change") is not compatible`, v+2)) {
			t.Errorf("binary of version %d against a breaking schema %d: %v; want ErrSchemaTooNew naming migration %d",
				older[len(older)-1].version, v+2, err, v+2)
		}
	}
}

// A binary of schema version 8, the first that checks, runs against the
// schema this one leaves: every migration after 8 is compatible with it.
func TestVersion8BinaryAgainstThisSchema(t *testing.T) {
	db := sqliteDB(t)
	if err := migrate(context.Background(), db, sqliteDialect(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	// Migration 8 is recorded with the columns it adds, and so are those after it.
	for _, m := range migrations()[recordsCompatibility-1:] {
		var name string
		var from sql.NullInt64
		if err := db.QueryRow(`SELECT name, compatible_from FROM `+migrationsTable+` WHERE version = ?`, m.version).Scan(&name, &from); err != nil ||
			name != m.name || from != m.recordedCompatibleFrom() {
			t.Errorf("migration %d recorded as %q, %+v (%v); want %q, %+v", m.version, name, from, err, m.name, m.recordedCompatibleFrom())
		}
	}
	if err := migrateWith(context.Background(), db, sqliteDialect(), slog.New(slog.DiscardHandler), migrations()[:recordsCompatibility]); err != nil {
		t.Errorf("a binary of version %d: %v", recordsCompatibility, err)
	}
}

// A migration interrupted where DDL commits implicitly (MySQL) stays marked
// as started: the binary that knows it finishes it; older binaries refuse
// the schema instead of running against half of it, the newer one's
// release named. (SQLite plays the marker a crash would leave.)
func TestInterruptedMigration(t *testing.T) {
	ctx := context.Background()
	db := sqliteDB(t)
	d := sqliteDialect()
	current := migrations()
	v := current[len(current)-1].version
	next := migration{version: v + 1, name: "an additive table", compatibleFrom: v, up: func(d dialect) []string {
		return []string{`CREATE TABLE kubesvc_future (id ` + d.key + `, PRIMARY KEY (id))`}
	}}
	newer := append(current[:len(current):len(current)], next)
	if err := migrateWith(ctx, db, d, slog.New(slog.DiscardHandler), current); err != nil {
		t.Fatal(err)
	}
	// A newer binary crashed after marking its migration as started.
	if _, err := db.Exec(`INSERT INTO `+migrationsTable+` (version, applied_at, name, compatible_from) VALUES (?, '', ?, NULL)`, v+1, next.name); err != nil {
		t.Fatal(err)
	}
	err := migrateWith(ctx, db, d, slog.New(slog.DiscardHandler), current)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf(`migration %d ("an additive table") was interrupted`, v+1)) {
		t.Errorf("an older binary against an interrupted migration: %v; want ErrSchemaTooNew saying migration %d was interrupted", err, v+1)
	}
	if err := migrateWith(ctx, db, d, slog.New(slog.DiscardHandler), newer); err != nil {
		t.Fatalf("the binary that knows the interrupted migration: %v", err)
	}
	var at string
	var from sql.NullInt64
	if err := db.QueryRow(`SELECT applied_at, compatible_from FROM `+migrationsTable+` WHERE version = ?`, v+1).Scan(&at, &from); err != nil ||
		at == "" || from != (sql.NullInt64{Int64: v, Valid: true}) {
		t.Errorf("the finished migration recorded as %q, %+v (%v); want a time and %d", at, from, err, v)
	}
	if _, err := db.Exec(`INSERT INTO kubesvc_future (id) VALUES ('x')`); err != nil {
		t.Errorf("the finished migration's table: %v", err)
	}
	if err := migrateWith(ctx, db, d, slog.New(slog.DiscardHandler), current); err != nil {
		t.Errorf("an older binary once the compatible migration finished: %v", err)
	}
	// Half of a migration marked compatible with older binaries (it only
	// adds) does not stop them.
	if _, err := db.Exec(`INSERT INTO `+migrationsTable+` (version, applied_at, name, compatible_from) VALUES (?, '', 'more', ?)`, v+2, v); err != nil {
		t.Fatal(err)
	}
	if err := migrateWith(ctx, db, d, slog.New(slog.DiscardHandler), current); err != nil {
		t.Errorf("an older binary against half of a compatible migration: %v", err)
	}
}

// sqliteDB is an empty SQLite database, closed at the end of the test.
func sqliteDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
