package controlplane

import (
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
