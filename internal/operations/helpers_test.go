package operations

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// openStore opens a SQLite store for the test, closed when it ends.
func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "ops.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// waitRow polls the history until ok holds for the task's row.
func waitRow(t *testing.T, st store.Store, id, what string, ok func(store.Operation) bool) store.Operation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		row, err := st.GetOperation(context.Background(), id)
		if err == nil && ok(row) {
			return row
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: want %s, have state %s, agent %q, sent at %v, error %q, result %s (err %v)",
				id, what, row.State, row.AgentID, row.SentAt, row.ErrorMessage, row.Result, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState waits for the task's row to reach state want.
func waitState(t *testing.T, st store.Store, id, want string) store.Operation {
	t.Helper()
	return waitRow(t, st, id, want, func(r store.Operation) bool { return r.State == want })
}
