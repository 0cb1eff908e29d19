package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

func TestOpenDrivers(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.DriverSQLite, filepath.Join(t.TempDir(), "cache.db"), nil)
	if err != nil {
		t.Fatalf("Open(sqlite): %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, driver := range []string{"", "oracle", "SQLite", "postgresql"} {
		if s, err := store.Open(ctx, driver, "x", nil); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q): no error", driver)
		} else if !strings.Contains(err.Error(), "sqlite, mysql or postgres") {
			t.Errorf("Open(%q) error %q does not name the drivers", driver, err)
		}
	}
	// Bad DSNs fail before connecting, without echoing a password.
	for driver, dsn := range map[string]string{
		store.DriverMySQL:    "user:s3cret@tcp(127.0.0.1:1)/",
		store.DriverPostgres: "postgres://user:s3cret@127.0.0.1:1/db?sslmode=bogus",
	} {
		s, err := store.Open(ctx, driver, dsn, nil)
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%s, %q): no error", driver, dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%s) error shows the password: %v", driver, err)
		}
	}
}
