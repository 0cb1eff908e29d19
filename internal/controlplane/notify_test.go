package controlplane

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

func TestTouchedHandsOverCommittedObject(t *testing.T) {
	st := store.StreamKey{Account: "a", Resource: store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	object := func(name, rv string) *store.Object {
		return &store.Object{ObjectKey: store.ObjectKey{Account: "a", Kind: "ConfigMap", Namespace: "ns", Name: name}, ResourceVersion: rv, JSON: []byte(`{}`)}
	}
	key := objectKeyString(object("x", "").ObjectKey)
	n := newNotifier()

	// A waiter sees nothing until a commit happens; a commit of another
	// object is no hit.
	c := n.current()
	if next, hit, stored := touched(c, key); next != c || hit || stored != nil {
		t.Fatalf("before any commit: %v %v %v", next == c, hit, stored)
	}
	n.publish([]store.Change{{Type: store.Upserted, Stream: st, Object: object("y", "1")}})
	c, hit, stored := touched(c, key)
	if hit || stored != nil || c != n.current() {
		t.Fatalf("commit of another object: hit %v stored %v", hit, stored)
	}

	// The last of several commits wins; within a batch, the last change.
	n.publish([]store.Change{{Type: store.Upserted, Stream: st, Object: object("x", "2")}})
	n.publish([]store.Change{
		{Type: store.Upserted, Stream: st, Object: object("x", "3")},
		{Type: store.Upserted, Stream: st, Object: object("x", "4")},
	})
	c, hit, stored = touched(c, key)
	if !hit || stored == nil || stored.ResourceVersion != "4" {
		t.Fatalf("upserts: hit %v stored %+v", hit, stored)
	}

	// A deletion, a sync end or a dropped account after the object:
	// the waiter must read the store.
	for _, then := range []func(){
		func() { n.publish([]store.Change{{Type: store.Deleted, Stream: st, Object: object("x", "5")}}) },
		func() { n.publish([]store.Change{{Type: store.SyncEnd, Stream: st, ResourceVersion: "5"}}) },
		n.publishAll,
	} {
		n.publish([]store.Change{{Type: store.Upserted, Stream: st, Object: object("x", "5")}})
		then()
		c, hit, stored = touched(c, key)
		if !hit || stored != nil {
			t.Fatalf("upsert then removal: hit %v stored %+v", hit, stored)
		}
	}
}

// TestAfterCommitsAnswersAsStored: a reader woken by the commit that wrote
// its object answers with the object as the store holds it, without
// reading it back; when the commit cannot tell (no group given, another
// group), it reads the store.
func TestAfterCommitsAnswersAsStored(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "cache.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &Server{store: st, commits: newNotifier()}
	stream := store.StreamKey{Account: "a", Resource: store.Resource{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespaced: true}}
	key := store.ObjectKey{Account: "a", Group: "apps", Kind: "deployment", Namespace: "ns", Name: "web"}
	watchKey := objectKeyString(key)

	c := s.commits.current()
	// The agent's object names neither account, group nor kind: the store
	// completes them from the stream.
	changes := []store.Change{{Type: store.Upserted, Stream: stream, Object: &store.Object{
		ObjectKey: store.ObjectKey{Namespace: "ns", Name: "web"}, ResourceVersion: "7",
		Labels: map[string]string{"app": "web"}, JSON: []byte(`{"kind":"Deployment"}`),
	}}}
	if err := st.ApplyChanges(ctx, changes); err != nil {
		t.Fatal(err)
	}
	s.commits.publish(changes)
	stored, err := st.GetObject(ctx, key)
	if err != nil {
		t.Fatal(err)
	}

	next, got, err := s.afterCommits(ctx, c, watchKey, key, true, store.Object{}, store.ErrNotFound)
	if err != nil || next != s.commits.current() {
		t.Fatalf("afterCommits: err %v, at the open commit %v", err, next == s.commits.current())
	}
	if got.ObjectKey != stored.ObjectKey || got.Version != stored.Version || got.Resource != stored.Resource ||
		got.ResourceVersion != "7" || !got.UpdatedAt.Equal(stored.UpdatedAt) || got.Labels["app"] != "web" ||
		string(got.JSON) != string(stored.JSON) {
		t.Errorf("answered %+v, the store holds %+v", got, stored)
	}
	// Read back: no group given, or another group than the commit's.
	k := store.ObjectKey{Account: "a", Kind: "Deployment", Namespace: "ns", Name: "web"}
	if _, got, err := s.afterCommits(ctx, c, watchKey, k, false, store.Object{}, store.ErrNotFound); err != nil || got.ResourceVersion != "7" {
		t.Errorf("without a group: %+v, %v", got, err)
	}
	k.Group = "extensions"
	if _, _, err := s.afterCommits(ctx, c, watchKey, k, true, store.Object{}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another group: err %v, want ErrNotFound from the store", err)
	}
}
