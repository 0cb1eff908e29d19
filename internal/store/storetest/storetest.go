// Package storetest is the conformance suite of store.Store: every backend
// runs Run (and, if it persists, RunReopen) in its tests.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// Run runs the conformance suite. open returns a new, empty store for one
// subtest; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"EmptyBatch", testEmptyBatch},
		{"UpsertAndGet", testUpsertAndGet},
		{"FitStores", testFitStores},
		{"UpsertCreatesStream", testUpsertCreatesStream},
		{"UpsertReplaces", testUpsertReplaces},
		{"Deleted", testDeleted},
		{"Relist", testRelist},
		{"RelistAcrossCalls", testRelistAcrossCalls},
		{"RelistTwiceInOneBatch", testRelistTwiceInOneBatch},
		{"RelistKeepsUpsertedDuringSync", testRelistKeepsUpserted},
		{"RelistSweepsOnlyItsStream", testRelistSweepsOnlyItsStream},
		{"NamespaceStreamSweepsItsNamespace", testNamespaceStreamSweep},
		{"SyncingStreamHasNoResumePoint", testSyncingNoResumePoint},
		{"ResumePointsFilter", testResumePointsFilter},
		{"Streams", testStreams},
		{"AgentAccounts", testAgentAccounts},
		{"AccountsCRUD", testAccountsCRUD},
		{"AccountStates", testAccountStates},
		{"AccountsParallelWriters", testAccountsParallelWriters},
		{"Operations", testOperations},
		{"MarkOperationSent", testMarkOperationSent},
		{"Leases", testLeases},
		{"LeasesRace", testLeasesRace},
		{"MigratedAccounts", testMigratedAccounts},
		{"Applied", testApplied},
		{"ClusterReplicas", testClusterReplicas},
		{"ClusterReplicaTimeouts", testClusterReplicaTimeouts},
		{"ClusterAssignments", testClusterAssignments},
		{"ClusterParallelClaims", testClusterParallelClaims},
		{"ClusterParallelSessions", testClusterParallelSessions},
		{"ClusterFencedApply", testClusterFencedApply},
		{"AgentsServing", testAgentsServing},
		{"Bookmark", testBookmark},
		{"StreamRemoved", testStreamRemoved},
		{"DeleteAccount", testDeleteAccount},
		{"AtomicBatch", testAtomicBatch},
		{"InvalidChanges", testInvalidChanges},
		{"ListObjectsFilters", testListObjectsFilters},
		{"ListObjectsSelectorAndLimit", testListObjectsSelectorLimit},
		{"ListObjectsOrder", testListObjectsOrder},
		{"Namespaces", testNamespaces},
		{"CachedAccounts", testCachedAccounts},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ReadsDuringWrite", testReadsDuringWrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// Resources used by the suite.

func deployments() store.Resource {
	return store.Resource{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespaced: true}
}

func configMaps() store.Resource {
	return store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
}

func namespaces() store.Resource {
	return store.Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"}
}

// stream returns the stream of r in account, within namespace ns ("" for
// all namespaces).
func stream(account string, r store.Resource, ns string) store.StreamKey {
	return store.StreamKey{Account: account, Resource: r, Namespace: ns}
}

// obj returns an object of the stream's type (ObjectKey type fields set
// from the stream, as an agent would), with a small JSON body.
func obj(st store.StreamKey, ns, name, rv string, labels map[string]string) *store.Object {
	return &store.Object{
		ObjectKey: store.ObjectKey{
			Account: st.Account, Group: st.Resource.Group, Kind: st.Resource.Kind,
			Namespace: ns, Name: name,
		},
		Version:         st.Resource.Version,
		Resource:        st.Resource.Resource,
		UID:             "uid-" + ns + "-" + name,
		ResourceVersion: rv,
		Labels:          labels,
		JSON: []byte(fmt.Sprintf(`{"kind":%q,"metadata":{"name":%q,"namespace":%q,"resourceVersion":%q}}`,
			st.Resource.Kind, name, ns, rv)),
	}
}

func listed(st store.StreamKey, o *store.Object) store.Change {
	return store.Change{Type: store.Listed, Stream: st, Object: o}
}

func upserted(st store.StreamKey, o *store.Object) store.Change {
	return store.Change{Type: store.Upserted, Stream: st, Object: o}
}

func deleted(st store.StreamKey, o *store.Object, rv string) store.Change {
	return store.Change{Type: store.Deleted, Stream: st, Object: o, ResourceVersion: rv}
}

func syncBegin(st store.StreamKey) store.Change {
	return store.Change{Type: store.SyncBegin, Stream: st}
}

func syncEnd(st store.StreamKey, rv string) store.Change {
	return store.Change{Type: store.SyncEnd, Stream: st, ResourceVersion: rv}
}

func bookmark(st store.StreamKey, rv string) store.Change {
	return store.Change{Type: store.Bookmark, Stream: st, ResourceVersion: rv}
}

func removed(st store.StreamKey) store.Change {
	return store.Change{Type: store.StreamRemoved, Stream: st}
}

// relist returns a complete relist of st: SyncBegin, objs Listed, SyncEnd.
func relist(st store.StreamKey, rv string, objs ...*store.Object) []store.Change {
	cs := []store.Change{syncBegin(st)}
	for _, o := range objs {
		cs = append(cs, listed(st, o))
	}
	return append(cs, syncEnd(st, rv))
}

func apply(t *testing.T, s store.Store, changes ...store.Change) {
	t.Helper()
	if err := s.ApplyChanges(context.Background(), changes); err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
}

// names lists the objects matching q as "account/kind/namespace/name".
func names(t *testing.T, s store.Store, q store.Query) []string {
	t.Helper()
	objs, err := s.ListObjects(context.Background(), q)
	if err != nil {
		t.Fatalf("ListObjects(%+v): %v", q, err)
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.Account+"/"+o.Kind+"/"+o.Namespace+"/"+o.Name)
	}
	return out
}

// positions returns the resume points of accounts as "account/resource.group
// in namespace" => resource version.
func positions(t *testing.T, s store.Store, accounts ...string) map[string]string {
	t.Helper()
	rps, err := s.ResumePoints(context.Background(), accounts)
	if err != nil {
		t.Fatalf("ResumePoints(%v): %v", accounts, err)
	}
	out := map[string]string{}
	for _, rp := range rps {
		out[streamString(rp.Stream)] = rp.ResourceVersion
	}
	return out
}

func streamString(k store.StreamKey) string {
	s := k.Account + "/" + k.Resource.Resource
	if k.Resource.Group != "" {
		s += "." + k.Resource.Group
	}
	if k.Namespace != "" {
		s += " in " + k.Namespace
	}
	return s
}

func wantNames(t *testing.T, s store.Store, q store.Query, want ...string) {
	t.Helper()
	got := names(t, s, q)
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListObjects(%s):\n got %q\nwant %q", describeQuery(q), got, want)
	}
}

func wantPositions(t *testing.T, s store.Store, accounts []string, want map[string]string) {
	t.Helper()
	got := positions(t, s, accounts...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ResumePoints(%q):\n got %v\nwant %v", accounts, got, want)
	}
}

func describeQuery(q store.Query) string {
	var parts []string
	for _, f := range []struct{ k, v string }{
		{"account", q.Account}, {"group", q.Group}, {"kind", q.Kind}, {"namespace", q.Namespace},
		{"name", q.Name}, {"application", q.Application},
	} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	if q.Selector != nil {
		parts = append(parts, "selector="+q.Selector.String())
	}
	if q.Limit > 0 {
		parts = append(parts, fmt.Sprintf("limit=%d", q.Limit))
	}
	return strings.Join(parts, " ")
}

// withinNow reports whether ts is between before and after, at millisecond
// precision.
func withinNow(ts, before, after time.Time) bool {
	return !ts.Before(before.Truncate(time.Millisecond)) && !ts.After(after.Add(time.Millisecond))
}
