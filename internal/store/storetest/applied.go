package storetest

import (
	"context"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

func applied(st store.StreamKey, o *store.Object) store.Change {
	return store.Change{Type: store.Applied, Stream: st, Object: o}
}

// Applied objects (an operation's result, ahead of the watch) are stored
// only while the stream has not passed their version, never move the
// stream's position, and are ignored while the stream syncs.
func testApplied(t *testing.T, s store.Store) {
	ctx := context.Background()
	cms := stream("prod", configMaps(), "")
	apply(t, s, relist(cms, "5", obj(cms, "ns", "a", "3", nil))...)

	rvOf := func(name string) string {
		t.Helper()
		o, err := s.GetObject(ctx, store.ObjectKey{Account: "prod", Kind: "ConfigMap", Namespace: "ns", Name: name})
		if err != nil {
			return "absent"
		}
		return o.ResourceVersion
	}
	position := func() string {
		t.Helper()
		rps, err := s.ResumePoints(ctx, []string{"prod"})
		if err != nil || len(rps) != 1 {
			t.Fatalf("resume points: %v %v", rps, err)
		}
		return rps[0].ResourceVersion
	}

	// Ahead of the watch: stored, position unchanged.
	ch := []store.Change{applied(cms, obj(cms, "ns", "b", "7", nil))}
	if err := s.ApplyChanges(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if ch[0].Object == nil || rvOf("b") != "7" || position() != "5" {
		t.Fatalf("applied ahead: returned %v, b at %s, position %s; want stored at 7, position 5", ch[0].Object, rvOf("b"), position())
	}
	// The watch catches up, past it: a late Applied of an older version is
	// ignored (no regression), and reported as not stored.
	apply(t, s, upserted(cms, obj(cms, "ns", "b", "7", nil)), upserted(cms, obj(cms, "ns", "a", "9", nil)))
	ch = []store.Change{applied(cms, obj(cms, "ns", "a", "8", nil))}
	if err := s.ApplyChanges(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if ch[0].Object != nil || rvOf("a") != "9" || position() != "9" {
		t.Fatalf("applied behind: returned %v, a at %s, position %s; want ignored, 9, 9", ch[0].Object, rvOf("a"), position())
	}
	// Deleted by the watch after the apply: the stale Applied does not
	// bring it back.
	apply(t, s, store.Change{Type: store.Deleted, Stream: cms, Object: obj(cms, "ns", "b", "10", nil), ResourceVersion: "10"})
	apply(t, s, applied(cms, obj(cms, "ns", "b", "7", nil)))
	if got := rvOf("b"); got != "absent" {
		t.Fatalf("a deleted object came back at %s", got)
	}
	// While the stream relists, Applied is ignored.
	apply(t, s, syncBegin(cms))
	apply(t, s, applied(cms, obj(cms, "ns", "c", "20", nil)))
	if got := rvOf("c"); got != "absent" {
		t.Fatalf("applied during a sync stored at %s", got)
	}
	// An Applied for a stream the store does not know is ignored.
	other := stream("prod", deployments(), "")
	apply(t, s, applied(other, obj(other, "ns", "d", "30", nil)))
	if objs, _ := s.ListObjects(ctx, store.Query{Account: "prod", Kind: "Deployment"}); len(objs) != 0 {
		t.Fatalf("applied into an unknown stream: %v", objs)
	}
}
