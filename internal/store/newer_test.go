package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// newerSchema is a migration 999 recorded as a newer binary would, and
// what this binary does with the database then.
type newerSchema struct {
	name string
	// insert records migration 999 in kubesvc_schema_migrations.
	insert string
	// runs: this binary opens the database; otherwise it refuses with
	// ErrSchemaTooNew, its message naming the migration with says.
	runs bool
	says string
}

func newerSchemas() []newerSchema {
	v := store.SchemaVersion()
	return []newerSchema{
		{name: "Compatible", runs: true, insert: fmt.Sprintf(`INSERT INTO kubesvc_schema_migrations
			(version, applied_at, name, compatible_from) VALUES (999, 'future', 'an added table', %d)`, v)},
		{name: "CompatibleWithNewerOnly", says: `migration 999 ("for newer binaries") is not compatible`,
			insert: fmt.Sprintf(`INSERT INTO kubesvc_schema_migrations
			(version, applied_at, name, compatible_from) VALUES (999, 'future', 'for newer binaries', %d)`, v+1)},
		{name: "NotCompatible", says: `migration 999 ("a dropped column") is not compatible`,
			insert: `INSERT INTO kubesvc_schema_migrations
			(version, applied_at, name, compatible_from) VALUES (999, 'future', 'a dropped column', NULL)`},
		// A newer binary's migration, interrupted (where DDL commits
		// implicitly): half of it may be there.
		{name: "Interrupted", says: `migration 999 ("half done") was interrupted`,
			insert: `INSERT INTO kubesvc_schema_migrations
			(version, applied_at, name, compatible_from) VALUES (999, '', 'half done', NULL)`},
		// As every migration recorded before compatibility was.
		{name: "Unrecorded", says: `migration 999 (unnamed) is not compatible`,
			insert: `INSERT INTO kubesvc_schema_migrations (version, applied_at) VALUES (999, 'future')`},
	}
}

// checkNewerSchema opens (open) a database migrated to c: it runs, logging
// one INFO line and migrating nothing, or it refuses with a message that
// names the migration and says what to do.
func checkNewerSchema(t *testing.T, c newerSchema, open func(log *slog.Logger) (store.Store, error), migrations func() int64) {
	t.Helper()
	before := migrations()
	var logged bytes.Buffer
	st, err := open(slog.New(slog.NewTextHandler(&logged, nil)))
	if !c.runs {
		if err == nil {
			_ = st.Close()
			t.Fatal("opening a database of a newer, incompatible schema: no error")
		}
		msg := err.Error()
		if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(msg, "999") || !strings.Contains(msg, c.says) ||
			!strings.Contains(msg, "run the kubesvc release that") {
			t.Errorf("error %v, want ErrSchemaTooNew saying %q and what to do", err, c.says)
		}
		return
	}
	if err != nil {
		t.Fatalf("opening a database of a newer, compatible schema: %v", err)
	}
	defer st.Close()
	if _, err := st.HeartbeatReplica(context.Background(), store.Replica{ID: "r1", BaseURL: "http://r1"}); err != nil {
		t.Errorf("a write against the newer schema: %v", err)
	}
	if _, _, err := st.PutAgentSession(context.Background(), store.AgentSession{AgentID: "a", SessionID: "s", ReplicaID: "r1", ConnectedAt: time.Now()}); err != nil {
		t.Errorf("recording an agent session against the newer schema: %v", err)
	}
	const says = "store: database schema is newer than this binary, and compatible with it; not migrating"
	var lines []string
	for _, l := range strings.Split(logged.String(), "\n") {
		if strings.Contains(l, says) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "version=999") {
		t.Errorf("logged %q, want one INFO line %q with version=999", logged.String(), says)
	}
	if after := migrations(); after != before {
		t.Errorf("%d migrations recorded after opening, %d before: a binary must not migrate a newer schema", after, before)
	}
}

// checkRunningReplica is checkNewerSchema for a replica already running
// when the newer binary migrated the database (st was opened before c was
// recorded): CheckSchema lets it go on exactly when Open would have, and
// otherwise says which migration it must not run against.
func checkRunningReplica(t *testing.T, c newerSchema, st store.Store) {
	t.Helper()
	err := st.CheckSchema(context.Background())
	if c.runs {
		if err != nil {
			t.Errorf("CheckSchema against a newer, compatible schema: %v", err)
		}
		return
	}
	says := c.says
	if c.name == "Interrupted" {
		says = `started migration 999 ("half done")`
	}
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), says) {
		t.Errorf("CheckSchema: %v, want ErrSchemaTooNew saying %q", err, says)
	}
}

// checkSessionWithoutVersion records an agent session as binaries older
// than schema version 9 do, without its version: st reads it back, with
// an empty version.
func checkSessionWithoutVersion(t *testing.T, st store.Store, raw *sql.DB) {
	t.Helper()
	if _, err := raw.Exec(`INSERT INTO kubesvc_agent_sessions (session_id, replica_id, zone_id, dynamic_accounts, connected_at_ms, agent_id)
		VALUES ('s-old', 'r-old', 'z', FALSE, 1, 'a-old')`); err != nil {
		t.Fatalf("a session recorded as older binaries do: %v", err)
	}
	got, err := st.AgentSessions(context.Background())
	if err != nil || len(got) != 1 || got[0].AgentID != "a-old" || got[0].Version != "" {
		t.Errorf("sessions %+v (%v), want a-old without a version", got, err)
	}
}
