package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

func openSQLite(t testing.TB, path string) store.Store {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("OpenSQLite(%s): %v", path, err)
	}
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "cache.db"))
	})
}

func TestSQLiteReopen(t *testing.T) {
	root := t.TempDir()
	storetest.RunReopen(t, func(t *testing.T, name string) store.Store {
		return openSQLite(t, filepath.Join(root, name, "cache.db"))
	})
}

// rawDB opens the database file directly, bypassing the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestSQLiteMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dirs", "cache.db")
	for range 3 {
		if err := openSQLite(t, path).Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	db := rawDB(t, path)
	var n, version int
	var appliedAt string
	if err := db.QueryRow(`SELECT COUNT(*), MAX(version), MAX(applied_at) FROM kubesvc_schema_migrations`).
		Scan(&n, &version, &appliedAt); err != nil {
		t.Fatalf("read migrations: %v", err)
	}
	if want := int(store.SchemaVersion()); n != want || version != want {
		t.Errorf("kubesvc_schema_migrations: %d rows up to version %d, want %d rows up to version %d", n, version, want, want)
	}
	if _, err := time.Parse(time.RFC3339Nano, appliedAt); err != nil {
		t.Errorf("applied_at %q: %v", appliedAt, err)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

// A database migrated by a newer binary: this one runs against it only if
// the newer migrations are compatible with it (newerSchemas).
func TestSQLiteSchemaNewer(t *testing.T) {
	for _, c := range newerSchemas() {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache.db")
			running := openSQLite(t, path)
			db := rawDB(t, path)
			if _, err := db.Exec(c.insert); err != nil {
				t.Fatalf("insert: %v", err)
			}
			checkRunningReplica(t, c, running)
			if err := running.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkNewerSchema(t, c, func(log *slog.Logger) (store.Store, error) {
				return store.OpenSQLite(context.Background(), path, log)
			}, func() (n int64) {
				if err := db.QueryRow(`SELECT COUNT(*) FROM kubesvc_schema_migrations`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			})
		})
	}
}

func TestSQLiteSessionWithoutVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	st := openSQLite(t, path)
	defer st.Close()
	checkSessionWithoutVersion(t, st, rawDB(t, path))
}

func TestSQLiteBadPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "a?b.db")} {
		if s, err := store.OpenSQLite(context.Background(), p, nil); err == nil {
			_ = s.Close()
			t.Errorf("OpenSQLite(%q): no error", p)
		}
	}
}

// TestSQLiteReadsWhileWriteLocked holds the write lock from another
// connection: the store's reads go on, its writes wait (busy timeout) and
// complete once the lock is released.
func TestSQLiteReadsWhileWriteLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cache.db")
	s := openSQLite(t, path)
	defer s.Close()
	st := store.StreamKey{Account: "prod", Resource: store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	cm := func(name, rv string) *store.Object {
		return &store.Object{ObjectKey: store.ObjectKey{Namespace: "ns", Name: name}, ResourceVersion: rv, JSON: []byte(`{}`)}
	}
	if err := s.ApplyChanges(ctx, []store.Change{{Type: store.Upserted, Stream: st, Object: cm("a", "1")}}); err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}

	conn, err := rawDB(t, path).Conn(ctx)
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatalf("BEGIN IMMEDIATE: %v", err)
	}
	if _, err := conn.ExecContext(ctx, `DELETE FROM kubesvc_cache_objects`); err != nil {
		t.Fatalf("DELETE: %v", err)
	}

	written := make(chan error, 1)
	go func() {
		written <- s.ApplyChanges(ctx, []store.Change{{Type: store.Upserted, Stream: st, Object: cm("b", "2")}})
	}()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for range 10 {
		objs, err := s.ListObjects(rctx, store.Query{Account: "prod"})
		if err != nil || len(objs) != 1 {
			t.Fatalf("ListObjects while write-locked = %d objects, %v; want 1", len(objs), err)
		}
		if _, err := s.ResumePoints(rctx, nil); err != nil {
			t.Fatalf("ResumePoints while write-locked: %v", err)
		}
	}
	select {
	case err := <-written:
		t.Fatalf("ApplyChanges returned (%v) while another connection held the write lock", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatalf("ROLLBACK: %v", err)
	}
	if err := <-written; err != nil {
		t.Fatalf("ApplyChanges after the lock was released: %v", err)
	}
	objs, err := s.ListObjects(ctx, store.Query{Account: "prod"})
	if err != nil || len(objs) != 2 {
		t.Errorf("ListObjects = %d objects, %v; want 2", len(objs), err)
	}
}

// BenchmarkApplyChanges writes batches of 1000 changes of ~1.5 KiB objects:
// Listed (relist into an empty stream) and Upserted (updates of existing
// objects, moving the stream position).
func BenchmarkApplyChanges(b *testing.B) {
	const batchSize = 1000
	st := store.StreamKey{Account: "prod", Resource: store.Resource{Group: "apps", Version: "v1",
		Resource: "deployments", Kind: "Deployment", Namespaced: true}}
	body := strings.Repeat("x", 1500)
	mk := func(i, rv int) *store.Object {
		name := fmt.Sprintf("deploy-%07d", i)
		return &store.Object{
			ObjectKey:       store.ObjectKey{Namespace: fmt.Sprintf("ns-%02d", i%50), Name: name},
			UID:             fmt.Sprintf("uid-%07d", i),
			ResourceVersion: fmt.Sprint(rv),
			Application:     "app-" + fmt.Sprint(i%20),
			Labels:          map[string]string{"app.kubernetes.io/name": "app", "pod-template-hash": fmt.Sprint(i)},
			JSON:            []byte(fmt.Sprintf(`{"metadata":{"name":%q,"resourceVersion":"%d"},"spec":%q}`, name, rv, body)),
		}
	}
	for _, mode := range []struct {
		name string
		typ  store.ChangeType
	}{{"Listed", store.Listed}, {"Upserted", store.Upserted}} {
		b.Run(mode.name, func(b *testing.B) {
			s := openSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
			defer s.Close()
			ctx := context.Background()
			if err := s.ApplyChanges(ctx, []store.Change{{Type: store.SyncBegin, Stream: st}}); err != nil {
				b.Fatal(err)
			}
			rv, n := 0, 0
			batch := make([]store.Change, batchSize)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for j := range batch {
					rv++
					i := n
					if mode.typ == store.Upserted {
						i = n % 10000 // update a working set of 10k objects
					}
					n++
					batch[j] = store.Change{Type: mode.typ, Stream: st, Object: mk(i, rv)}
				}
				b.StartTimer()
				if err := s.ApplyChanges(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

// TestSQLiteStreamRows checks the stream rows themselves: what ResumePoints
// cannot show (generations, positions while syncing).
func TestSQLiteStreamRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cache.db")
	s := openSQLite(t, path)
	defer s.Close()
	db := rawDB(t, path)
	st := store.StreamKey{Account: "prod", Resource: store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	o := &store.Object{ObjectKey: store.ObjectKey{Namespace: "ns", Name: "a"}, ResourceVersion: "5"}
	type row struct {
		gen     int64
		syncing bool
		rv      string
		objGen  int64
	}
	check := func(step string, want row, changes ...store.Change) {
		t.Helper()
		if err := s.ApplyChanges(ctx, changes); err != nil {
			t.Fatalf("%s: ApplyChanges: %v", step, err)
		}
		var got row
		err := db.QueryRow(`SELECT s.generation, s.syncing, s.resource_version, COALESCE(MAX(o.generation), 0)
			FROM kubesvc_cache_streams s LEFT JOIN kubesvc_cache_objects o ON o.account = s.account
			WHERE s.account = 'prod' GROUP BY s.account`).Scan(&got.gen, &got.syncing, &got.rv, &got.objGen)
		if err != nil {
			t.Fatalf("%s: read rows: %v", step, err)
		}
		if got != want {
			t.Errorf("%s: stream row %+v, want %+v", step, got, want)
		}
	}
	check("upsert", row{1, false, "5", 1}, store.Change{Type: store.Upserted, Stream: st, Object: o})
	check("sync begin", row{2, true, "", 1}, store.Change{Type: store.SyncBegin, Stream: st})
	check("bookmark while syncing", row{2, true, "", 1}, store.Change{Type: store.Bookmark, Stream: st, ResourceVersion: "6"})
	check("listed", row{2, true, "", 2}, store.Change{Type: store.Listed, Stream: st, Object: o})
	check("sync end", row{2, false, "7", 2}, store.Change{Type: store.SyncEnd, Stream: st, ResourceVersion: "7"})
	check("two relists", row{4, false, "9", 4},
		store.Change{Type: store.SyncBegin, Stream: st}, store.Change{Type: store.SyncEnd, Stream: st, ResourceVersion: "8"},
		store.Change{Type: store.SyncBegin, Stream: st}, store.Change{Type: store.Listed, Stream: st, Object: o},
		store.Change{Type: store.SyncEnd, Stream: st, ResourceVersion: "9"})
}
