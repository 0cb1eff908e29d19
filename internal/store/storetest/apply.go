package storetest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kubesvc/kubesvc/internal/store"
)

func testEmptyBatch(t *testing.T, s store.Store) {
	if err := s.ApplyChanges(context.Background(), nil); err != nil {
		t.Fatalf("ApplyChanges(nil): %v", err)
	}
	wantNames(t, s, store.Query{})
	wantPositions(t, s, nil, map[string]string{})
}

func testUpsertAndGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := stream("prod", deployments(), "")
	o := obj(st, "web", "frontend", "12", map[string]string{"app": "frontend", "tier": "web"})
	o.Application = "shop"
	before := time.Now()
	apply(t, s, upserted(st, o))
	after := time.Now()

	for _, kind := range []string{"Deployment", "deployment", "DEPLOYMENT"} {
		got, err := s.GetObject(ctx, store.ObjectKey{Account: "prod", Group: "apps", Kind: kind, Namespace: "web", Name: "frontend"})
		if err != nil {
			t.Fatalf("GetObject(kind %q): %v", kind, err)
		}
		if got.ObjectKey != o.ObjectKey {
			t.Errorf("key = %+v, want %+v", got.ObjectKey, o.ObjectKey)
		}
		if got.Version != "v1" || got.Resource != "deployments" || got.UID != o.UID ||
			got.ResourceVersion != "12" || got.Application != "shop" {
			t.Errorf("GetObject = %+v, want the fields of %+v", got, o)
		}
		if !maps.Equal(got.Labels, o.Labels) {
			t.Errorf("labels = %v, want %v", got.Labels, o.Labels)
		}
		if !bytes.Equal(got.JSON, o.JSON) {
			t.Errorf("JSON = %s, want %s", got.JSON, o.JSON)
		}
		if !withinNow(got.UpdatedAt, before, after) {
			t.Errorf("UpdatedAt = %v, want between %v and %v", got.UpdatedAt, before, after)
		}
	}

	// Once applied, a change's object is as stored (ApplyChanges completes
	// it), so that the caller can hand it to readers without reading it back.
	bare := &store.Object{ObjectKey: store.ObjectKey{Namespace: "web", Name: "bare"}, ResourceVersion: "13", JSON: []byte(`{}`)}
	apply(t, s, upserted(st, bare))
	got, err := s.GetObject(ctx, store.ObjectKey{Account: "prod", Group: "apps", Kind: "Deployment", Namespace: "web", Name: "bare"})
	if err != nil {
		t.Fatalf("GetObject(bare): %v", err)
	}
	if got.ObjectKey != bare.ObjectKey || got.Version != bare.Version || got.Resource != bare.Resource ||
		got.ResourceVersion != bare.ResourceVersion || !bytes.Equal(got.JSON, bare.JSON) || !got.UpdatedAt.Equal(bare.UpdatedAt) {
		t.Errorf("applied object = %+v, stored %+v", *bare, got)
	}

	for _, key := range []store.ObjectKey{
		{Account: "prod", Group: "apps", Kind: "Deployment", Namespace: "web", Name: "backend"},
		{Account: "prod", Group: "apps", Kind: "Deployment", Namespace: "other", Name: "frontend"},
		{Account: "prod", Group: "", Kind: "Deployment", Namespace: "web", Name: "frontend"},
		{Account: "staging", Group: "apps", Kind: "Deployment", Namespace: "web", Name: "frontend"},
		{Account: "prod", Group: "apps", Kind: "ReplicaSet", Namespace: "web", Name: "frontend"},
	} {
		if _, err := s.GetObject(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetObject(%+v) error = %v, want ErrNotFound", key, err)
		}
	}
}

func testUpsertCreatesStream(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	before := time.Now()
	apply(t, s, upserted(st, obj(st, "a", "x", "5", nil)))
	after := time.Now()

	rps, err := s.ResumePoints(context.Background(), []string{"prod"})
	if err != nil {
		t.Fatalf("ResumePoints: %v", err)
	}
	if len(rps) != 1 {
		t.Fatalf("ResumePoints = %+v, want one", rps)
	}
	rp := rps[0]
	if rp.Stream != st || rp.ResourceVersion != "5" || !withinNow(rp.UpdatedAt, before, after) {
		t.Errorf("ResumePoint = %+v, want stream %+v at 5 updated now", rp, st)
	}
	// The stream started at generation 1: a relist (generation 2) that does
	// not list the object deletes it.
	apply(t, s, relist(st, "9", obj(st, "a", "y", "8", nil))...)
	wantNames(t, s, store.Query{}, "prod/Deployment/a/y")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "9"})
}

func testUpsertReplaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := stream("prod", deployments(), "")
	apply(t, s, upserted(st, obj(st, "a", "x", "5", map[string]string{"v": "1"})))
	o2 := obj(st, "a", "x", "6", map[string]string{"v": "2"})
	o2.Application = "app2"
	apply(t, s, upserted(st, o2))
	got, err := s.GetObject(ctx, o2.ObjectKey)
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	if got.ResourceVersion != "6" || got.Labels["v"] != "2" || got.Application != "app2" || !bytes.Equal(got.JSON, o2.JSON) {
		t.Errorf("GetObject = %+v, want the second version", got)
	}
	wantNames(t, s, store.Query{}, "prod/Deployment/a/x")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "6"})
}

func testDeleted(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	x, y := obj(st, "a", "x", "5", nil), obj(st, "a", "y", "6", nil)
	apply(t, s, relist(st, "7", x, y)...)

	apply(t, s, deleted(st, x, "10"))
	wantNames(t, s, store.Query{}, "prod/Deployment/a/y")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "10"})

	// Without a ResourceVersion, the object's is the position.
	y.ResourceVersion = "11"
	apply(t, s, deleted(st, y, ""))
	wantNames(t, s, store.Query{})
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "11"})

	// Deleting what is not cached only moves the position.
	apply(t, s, deleted(st, obj(st, "a", "ghost", "", nil), "12"))
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "12"})
}

func testRelist(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	a, b, c := obj(st, "ns", "a", "1", nil), obj(st, "ns", "b", "2", nil), obj(st, "ns", "c", "3", nil)
	apply(t, s, relist(st, "3", a, b, c)...)
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a", "prod/Deployment/ns/b", "prod/Deployment/ns/c")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "3"})

	a2 := obj(st, "ns", "a", "4", map[string]string{"new": "yes"})
	apply(t, s, relist(st, "5", a2, c)...)
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a", "prod/Deployment/ns/c")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "5"})
	got, err := s.GetObject(context.Background(), a2.ObjectKey)
	if err != nil || got.ResourceVersion != "4" || got.Labels["new"] != "yes" {
		t.Errorf("GetObject(a) = %+v, %v; want the relisted version", got, err)
	}

	// A relist listing nothing empties the stream.
	apply(t, s, relist(st, "6")...)
	wantNames(t, s, store.Query{})
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "6"})
}

func testRelistAcrossCalls(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	a, b, c := obj(st, "ns", "a", "1", nil), obj(st, "ns", "b", "2", nil), obj(st, "ns", "c", "3", nil)
	apply(t, s, relist(st, "3", a, b, c)...)

	apply(t, s, syncBegin(st), listed(st, a))
	wantPositions(t, s, nil, map[string]string{})
	// Until SyncEnd nothing is swept.
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a", "prod/Deployment/ns/b", "prod/Deployment/ns/c")
	apply(t, s, listed(st, c))
	apply(t, s, syncEnd(st, "8"))
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a", "prod/Deployment/ns/c")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "8"})
}

func testRelistTwiceInOneBatch(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	a, b := obj(st, "ns", "a", "1", nil), obj(st, "ns", "b", "2", nil)
	batch := append(relist(st, "2", a, b), relist(st, "3", b)...)
	apply(t, s, batch...)
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/b")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "3"})
	// And the generation persisted is the latest: one more relist sweeps.
	apply(t, s, relist(st, "4", a)...)
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a")
}

func testRelistKeepsUpserted(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	a, b, c := obj(st, "ns", "a", "1", nil), obj(st, "ns", "b", "2", nil), obj(st, "ns", "c", "3", nil)
	apply(t, s, relist(st, "3", a, b)...)
	apply(t, s, syncBegin(st), listed(st, a), upserted(st, b), upserted(st, c), syncEnd(st, "9"))
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a", "prod/Deployment/ns/b", "prod/Deployment/ns/c")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "9"})
}

func testRelistSweepsOnlyItsStream(t *testing.T, s store.Store) {
	deps := stream("prod", deployments(), "")
	cms := stream("prod", configMaps(), "")
	otherAccount := stream("staging", deployments(), "")
	// Same kind in another group.
	otherGroup := stream("prod", store.Resource{Group: "example.com", Version: "v1", Resource: "deployments",
		Kind: "Deployment", Namespaced: true}, "")
	for _, st := range []store.StreamKey{deps, cms, otherAccount, otherGroup} {
		apply(t, s, relist(st, "1", obj(st, "ns", "a", "1", nil), obj(st, "ns", "b", "1", nil))...)
	}
	apply(t, s, relist(deps, "2")...)
	wantNames(t, s, store.Query{Account: "prod", Kind: "Deployment", Group: "apps"})
	wantNames(t, s, store.Query{Account: "prod", Kind: "Deployment", Group: "example.com"},
		"prod/Deployment/ns/a", "prod/Deployment/ns/b")
	wantNames(t, s, store.Query{Account: "prod", Kind: "ConfigMap"}, "prod/ConfigMap/ns/a", "prod/ConfigMap/ns/b")
	wantNames(t, s, store.Query{Account: "staging"}, "staging/Deployment/ns/a", "staging/Deployment/ns/b")
}

func testNamespaceStreamSweep(t *testing.T, s store.Store) {
	inA := stream("prod", configMaps(), "a")
	inB := stream("prod", configMaps(), "b")
	apply(t, s, relist(inA, "10", obj(inA, "a", "x", "1", nil), obj(inA, "a", "y", "1", nil))...)
	apply(t, s, relist(inB, "20", obj(inB, "b", "x", "1", nil), obj(inB, "b", "y", "1", nil))...)
	wantPositions(t, s, nil, map[string]string{"prod/configmaps in a": "10", "prod/configmaps in b": "20"})

	// The namespace streams have their own generations: relisting a twice
	// must not sweep b.
	apply(t, s, relist(inA, "11", obj(inA, "a", "y", "2", nil))...)
	apply(t, s, relist(inA, "12", obj(inA, "a", "y", "3", nil))...)
	wantNames(t, s, store.Query{}, "prod/ConfigMap/a/y", "prod/ConfigMap/b/x", "prod/ConfigMap/b/y")
	wantPositions(t, s, nil, map[string]string{"prod/configmaps in a": "12", "prod/configmaps in b": "20"})

	// The object's namespace defaults to the stream's.
	o := obj(inB, "", "z", "21", nil)
	apply(t, s, upserted(inB, o))
	wantNames(t, s, store.Query{Namespace: "b"}, "prod/ConfigMap/b/x", "prod/ConfigMap/b/y", "prod/ConfigMap/b/z")
}

func testSyncingNoResumePoint(t *testing.T, s store.Store) {
	deps := stream("prod", deployments(), "")
	cms := stream("prod", configMaps(), "")
	apply(t, s, relist(deps, "5", obj(deps, "ns", "a", "1", nil))...)
	apply(t, s, relist(cms, "6")...)
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "5", "prod/configmaps": "6"})

	apply(t, s, syncBegin(deps), listed(deps, obj(deps, "ns", "a", "1", nil)))
	wantPositions(t, s, nil, map[string]string{"prod/configmaps": "6"})
	// Upserted and Bookmark during the sync do not make a resume point.
	apply(t, s, upserted(deps, obj(deps, "ns", "b", "7", nil)), bookmark(deps, "8"))
	wantPositions(t, s, nil, map[string]string{"prod/configmaps": "6"})
	apply(t, s, syncEnd(deps, "9"))
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "9", "prod/configmaps": "6"})

	// A SyncEnd without a resource version leaves no resume point.
	apply(t, s, relist(cms, "")...)
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "9"})
}

// What Fit lets through is stored by every backend: keys of 253 ASCII
// bytes, and an application of many multi-byte characters, cut to fit.
func testFitStores(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := stream("prod", deployments(), "")
	o := obj(st, "web", strings.Repeat("n", 253), "12", nil)
	o.Application, o.UID = strings.Repeat("é", 200), "uid-fit"
	c := upserted(st, o)
	if err := store.Fit(&c); err != nil {
		t.Fatal(err)
	}
	apply(t, s, c)
	got, err := s.GetObject(ctx, o.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.Application != o.Application || !utf8.ValidString(got.Application) {
		t.Errorf("application stored as %d bytes, want the %d Fit left", len(got.Application), len(o.Application))
	}
}
