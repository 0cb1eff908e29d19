package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

func testResumePointsFilter(t *testing.T, s store.Store) {
	prod := stream("prod", deployments(), "")
	prodNS := stream("prod", configMaps(), "team")
	staging := stream("staging", namespaces(), "")
	dev := stream("dev", deployments(), "")
	before := time.Now()
	apply(t, s, relist(prod, "1")...)
	apply(t, s, relist(prodNS, "2")...)
	apply(t, s, relist(staging, "3")...)
	apply(t, s, relist(dev, "4")...)
	after := time.Now()

	all := map[string]string{
		"prod/deployments.apps": "1", "prod/configmaps in team": "2",
		"staging/namespaces": "3", "dev/deployments.apps": "4",
	}
	wantPositions(t, s, nil, all)
	wantPositions(t, s, []string{}, all)
	wantPositions(t, s, []string{"prod"}, map[string]string{"prod/deployments.apps": "1", "prod/configmaps in team": "2"})
	wantPositions(t, s, []string{"staging", "dev", "unknown"}, map[string]string{"staging/namespaces": "3", "dev/deployments.apps": "4"})
	wantPositions(t, s, []string{"unknown"}, map[string]string{})

	// The stream round-trips whole.
	rps, err := s.ResumePoints(context.Background(), []string{"prod", "staging"})
	if err != nil {
		t.Fatalf("ResumePoints: %v", err)
	}
	var got []store.StreamKey
	for _, rp := range rps {
		got = append(got, rp.Stream)
		if !withinNow(rp.UpdatedAt, before, after) {
			t.Errorf("%s: UpdatedAt = %v, want between %v and %v", streamString(rp.Stream), rp.UpdatedAt, before, after)
		}
	}
	for _, want := range []store.StreamKey{prod, prodNS, staging} {
		if !slices.Contains(got, want) {
			t.Errorf("ResumePoints streams = %+v, missing %+v", got, want)
		}
	}
}

func testBookmark(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	apply(t, s, relist(st, "5", obj(st, "ns", "a", "1", nil))...)
	rps, err := s.ResumePoints(context.Background(), nil)
	if err != nil || len(rps) != 1 {
		t.Fatalf("ResumePoints = %+v, %v", rps, err)
	}
	time.Sleep(5 * time.Millisecond)
	apply(t, s, bookmark(st, "50"))
	rps2, err := s.ResumePoints(context.Background(), nil)
	if err != nil || len(rps2) != 1 {
		t.Fatalf("ResumePoints = %+v, %v", rps2, err)
	}
	if rps2[0].ResourceVersion != "50" || !rps2[0].UpdatedAt.After(rps[0].UpdatedAt) {
		t.Errorf("after Bookmark: %+v, want position 50 updated after %v", rps2[0], rps[0].UpdatedAt)
	}
	// A bookmark changes no object.
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/a")

	// Bookmarks while syncing are ignored: SyncEnd decides.
	apply(t, s, syncBegin(st), bookmark(st, "60"))
	wantPositions(t, s, nil, map[string]string{})
	apply(t, s, listed(st, obj(st, "ns", "a", "1", nil)), bookmark(st, "61"), syncEnd(st, "55"))
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "55"})
	apply(t, s, bookmark(st, "70"), bookmark(st, "71"))
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "71"})
}

func testStreamRemoved(t *testing.T, s store.Store) {
	deps := stream("prod", deployments(), "")
	cmsA := stream("prod", configMaps(), "a")
	cmsB := stream("prod", configMaps(), "b")
	apply(t, s, relist(deps, "1", obj(deps, "a", "d", "1", nil))...)
	apply(t, s, relist(cmsA, "2", obj(cmsA, "a", "x", "1", nil), obj(cmsA, "a", "y", "1", nil))...)
	apply(t, s, relist(cmsB, "3", obj(cmsB, "b", "x", "1", nil))...)

	apply(t, s, removed(cmsA))
	wantNames(t, s, store.Query{}, "prod/ConfigMap/b/x", "prod/Deployment/a/d")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "1", "prod/configmaps in b": "3"})
	assertAccounts(t, s, []store.AccountSummary{{Account: "prod", Objects: 2, Streams: 2}})

	// Removing a missing stream is harmless; a stream removed and synced
	// again in one batch starts afresh.
	apply(t, s, removed(cmsA), removed(deps), syncBegin(deps),
		listed(deps, obj(deps, "a", "e", "9", nil)), syncEnd(deps, "9"))
	wantNames(t, s, store.Query{}, "prod/ConfigMap/b/x", "prod/Deployment/a/e")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "9", "prod/configmaps in b": "3"})
	apply(t, s, relist(deps, "10")...)
	wantNames(t, s, store.Query{}, "prod/ConfigMap/b/x")

	// Removing the all-namespaces stream of a kind takes every namespace.
	all := stream("prod", configMaps(), "")
	apply(t, s, upserted(all, obj(all, "c", "z", "4", nil)), removed(all))
	wantNames(t, s, store.Query{})
	wantPositions(t, s, nil, map[string]string{"prod/configmaps in b": "3", "prod/deployments.apps": "10"})
}

func testDeleteAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, account := range []string{"prod", "staging"} {
		st := stream(account, deployments(), "")
		apply(t, s, relist(st, "1", obj(st, "ns", "a", "1", nil))...)
		apply(t, s, syncBegin(stream(account, configMaps(), "")))
	}
	if err := s.DeleteAccount(ctx, "prod"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	wantNames(t, s, store.Query{}, "staging/Deployment/ns/a")
	wantPositions(t, s, nil, map[string]string{"staging/deployments.apps": "1"})
	assertAccounts(t, s, []store.AccountSummary{{Account: "staging", Objects: 1, Streams: 2}})
	if err := s.DeleteAccount(ctx, "unknown"); err != nil {
		t.Fatalf("DeleteAccount(unknown): %v", err)
	}
	// The account starts afresh: generation 1 again.
	st := stream("prod", deployments(), "")
	apply(t, s, upserted(st, obj(st, "ns", "b", "2", nil)))
	apply(t, s, relist(st, "3")...)
	wantNames(t, s, store.Query{Account: "prod"})
}

func testAtomicBatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := stream("prod", deployments(), "")
	other := stream("prod", configMaps(), "")
	apply(t, s, relist(st, "5", obj(st, "ns", "keep", "1", nil))...)

	bad := []store.Change{
		upserted(st, obj(st, "ns", "new", "6", nil)),
		deleted(st, obj(st, "ns", "keep", "", nil), "7"),
		syncBegin(other),
		listed(other, obj(other, "ns", "cm", "1", nil)),
		syncEnd(other, "8"),
		bookmark(st, "9"),
		{Type: store.Upserted, Stream: st}, // no object
	}
	if err := s.ApplyChanges(ctx, bad); err == nil {
		t.Fatal("ApplyChanges with an Upserted without object: no error")
	}
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/keep")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "5"})
	assertAccounts(t, s, []store.AccountSummary{{Account: "prod", Objects: 1, Streams: 1}})

	// The failure is in the middle of a relist: nothing is swept either.
	bad = []store.Change{syncBegin(st), {Type: store.Listed, Stream: st}, syncEnd(st, "10")}
	if err := s.ApplyChanges(ctx, bad); err == nil {
		t.Fatal("ApplyChanges with a Listed without object: no error")
	}
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/keep")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "5"})

	// A cancelled context applies nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.ApplyChanges(cctx, relist(st, "11")); err == nil {
		t.Error("ApplyChanges with a cancelled context: no error")
	}
	wantNames(t, s, store.Query{}, "prod/Deployment/ns/keep")
	wantPositions(t, s, nil, map[string]string{"prod/deployments.apps": "5"})
}

func testInvalidChanges(t *testing.T, s store.Store) {
	st := stream("prod", deployments(), "")
	inNS := stream("prod", configMaps(), "a")
	wrongKind := obj(st, "ns", "x", "1", nil)
	wrongKind.Kind = "StatefulSet"
	wrongAccount := obj(st, "ns", "x", "1", nil)
	wrongAccount.Account = "staging"
	for name, c := range map[string]store.Change{
		"unknown type":       {Type: store.ChangeType(99), Stream: st},
		"zero type":          {Stream: st},
		"deleted no object":  {Type: store.Deleted, Stream: st, ResourceVersion: "1"},
		"no account":         syncBegin(stream("", deployments(), "")),
		"no kind":            syncBegin(stream("prod", store.Resource{Version: "v1", Resource: "things"}, "")),
		"no name":            upserted(st, obj(st, "ns", "", "1", nil)),
		"kind mismatch":      upserted(st, wrongKind),
		"account mismatch":   listed(st, wrongAccount),
		"namespace mismatch": upserted(inNS, obj(inNS, "b", "x", "1", nil)),
	} {
		err := s.ApplyChanges(context.Background(), []store.Change{syncBegin(st), c})
		if err == nil {
			t.Errorf("%s: ApplyChanges: no error", name)
		} else if !errors.Is(err, store.ErrInvalidChange) {
			t.Errorf("%s: ApplyChanges error %v does not wrap ErrInvalidChange", name, err)
		}
	}
	assertAccounts(t, s, []store.AccountSummary{})
}

func assertAccounts(t *testing.T, s store.Store, want []store.AccountSummary) {
	t.Helper()
	got, err := s.CachedAccounts(context.Background())
	if err != nil {
		t.Fatalf("CachedAccounts: %v", err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("CachedAccounts = %+v, want %+v", got, want)
	}
}
