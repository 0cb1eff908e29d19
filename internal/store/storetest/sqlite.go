package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// SQLite opens an empty SQLite store in a directory of the test's own,
// closed when the test ends: the store of tests that need a real one but
// not a particular backend.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cache.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
