package controlplane

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/kubesvc/kubesvc/internal/store"
)

// A replica already running when a newer release migrates the shared
// database stops once the migration is one it must not run against, and
// runs on past one that allows it.
func TestReplicaStopsOnAnIncompatibleMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	st, err := store.OpenSQLite(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{ID: "cp-1", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		SchemaCheckPeriod: 20 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// The replica writes as it runs (its heartbeat): wait for the lock as
	// the store does, rather than fail at once with SQLITE_BUSY.
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	v := store.SchemaVersion()
	// A newer migration that binaries of this schema may run against.
	if _, err := raw.Exec(`INSERT INTO kubesvc_schema_migrations (version, applied_at, name, compatible_from) VALUES (?, 'now', 'an added table', ?)`, v+1, v); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the replica stopped after a compatible migration: %v", err)
	case <-time.After(300 * time.Millisecond): // 15 checks
	}
	// Then one they must not.
	if _, err := raw.Exec(`INSERT INTO kubesvc_schema_migrations (version, applied_at, name, compatible_from) VALUES (?, 'now', 'a dropped column', NULL)`, v+2); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		want := fmt.Sprintf(`migration %d ("a dropped column") is not compatible`, v+2)
		if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "stopping this replica") {
			t.Errorf("Run: %v, want ErrSchemaTooNew saying %q", err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the replica still runs 30s after an incompatible migration")
	}
}
