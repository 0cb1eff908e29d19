package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// RunReopen runs the persistence part of the suite. open(t, name) opens the
// database called name, empty the first time; opening the same name again
// (after Close) must find the data written before. Subtests use distinct
// names and close what they open.
func RunReopen(t *testing.T, open func(t *testing.T, name string) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, reopen func() store.Store)
	}{
		{"RelistAcrossReopen", testRelistAcrossReopen},
		{"DataSurvivesReopen", testDataSurvivesReopen},
		{"ReopenIsIdempotent", testReopenIsIdempotent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var current store.Store
			reopen := func() store.Store {
				t.Helper()
				if current != nil {
					if err := current.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
				}
				current = open(t, tc.name)
				return current
			}
			t.Cleanup(func() {
				if current != nil {
					if err := current.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
			tc.fn(t, reopen)
		})
	}
}

func testRelistAcrossReopen(t *testing.T, reopen func() store.Store) {
	st := stream("prod", deployments(), "")
	a, b, c := obj(st, "ns", "a", "1", nil), obj(st, "ns", "b", "2", nil), obj(st, "ns", "c", "3", nil)
	s := reopen()
	apply(t, s, relist(st, "3", a, b, c)...)

	s = reopen()
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "3"})
	apply(t, s, syncBegin(st), listed(st, a))

	s = reopen()
	// Still syncing after the restart: no resume point, nothing swept.
	wantPositions(t, s, nil, map[string]string{})
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a", "prod/Deployment/ns/b", "prod/Deployment/ns/c")
	apply(t, s, listed(st, c), syncEnd(st, "9"))
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a", "prod/Deployment/ns/c")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "9"})

	// The generation survives: another relist after a restart sweeps again.
	s = reopen()
	apply(t, s, relist(st, "10", c)...)
	s = reopen()
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/c")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "10"})
}

// snapshot is everything readable from a store.
type snapshot struct {
	Objects    []store.Object
	Resume     []store.ResumePoint
	Namespaces []string
	Accounts   []store.AccountSummary
}

func takeSnapshot(t *testing.T, s store.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	var snap snapshot
	var err error
	if snap.Objects, err = s.ListObjects(ctx, store.Query{}); err != nil {
		t.Fatalf("ListObjects: %v", err)
	}
	if snap.Resume, err = s.ResumePoints(ctx, nil); err != nil {
		t.Fatalf("ResumePoints: %v", err)
	}
	if snap.Namespaces, err = s.Namespaces(ctx, "prod"); err != nil {
		t.Fatalf("Namespaces: %v", err)
	}
	if snap.Accounts, err = s.CachedAccounts(ctx); err != nil {
		t.Fatalf("CachedAccounts: %v", err)
	}
	return snap
}

func testDataSurvivesReopen(t *testing.T, reopen func() store.Store) {
	s := reopen()
	for _, account := range []string{"prod", "staging"} {
		deps := stream(account, deployments(), "")
		cms := stream(account, configMaps(), "team")
		o := obj(deps, "web", "frontend", "5", map[string]string{"app": "frontend"})
		o.Application = "shop"
		apply(t, s, relist(deps, "5", o, obj(deps, "web", "backend", "4", nil))...)
		apply(t, s, relist(cms, "7", obj(cms, "team", "settings", "7", nil))...)
		apply(t, s, syncBegin(stream(account, namespaces(), "")))
	}
	before := takeSnapshot(t, s)
	if len(before.Objects) != 6 || len(before.Resume) != 4 {
		t.Fatalf("before reopen: %d objects and %d resume points, want 6 and 4", len(before.Objects), len(before.Resume))
	}
	s = reopen()
	after := takeSnapshot(t, s)
	if !reflect.DeepEqual(normalize(before), normalize(after)) {
		t.Errorf("after reopen:\n got %+v\nwant %+v", after, before)
	}
}

// normalize makes snapshots comparable with reflect.DeepEqual (time.Time
// values carry a monotonic reading and location).
func normalize(s snapshot) snapshot {
	for i := range s.Objects {
		s.Objects[i].UpdatedAt = s.Objects[i].UpdatedAt.UTC()
	}
	for i := range s.Resume {
		s.Resume[i].UpdatedAt = s.Resume[i].UpdatedAt.UTC()
	}
	return s
}

func testReopenIsIdempotent(t *testing.T, reopen func() store.Store) {
	st := stream("prod", configMaps(), "")
	for i := range 3 {
		s := reopen()
		apply(t, s, upserted(st, obj(st, "ns", fmt.Sprintf("o%d", i), fmt.Sprint(i+1), nil)))
		wantPositions(t, s, nil, map[string]string{"prod/configmaps": fmt.Sprint(i + 1)})
		if got := len(names(t, s, store.Query{})); got != i+1 {
			t.Fatalf("open #%d: %d objects, want %d", i+1, got, i+1)
		}
	}
}
