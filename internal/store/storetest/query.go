package storetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubesvc/kubesvc/internal/store"
)

func testListObjectsFilters(t *testing.T, s store.Store) {
	prodDeps := stream("prod", deployments(), "")
	prodCMs := stream("prod", configMaps(), "")
	prodCRDeps := stream("prod", store.Resource{Group: "example.com", Version: "v1beta1", Resource: "deployments",
		Kind: "Deployment", Namespaced: true}, "")
	stagingDeps := stream("staging", deployments(), "")
	withApp := func(o *store.Object, app string) *store.Object { o.Application = app; return o }

	before := time.Now()
	apply(t, s, relist(prodDeps, "1",
		withApp(obj(prodDeps, "web", "frontend", "1", map[string]string{"tier": "web"}), "shop"),
		withApp(obj(prodDeps, "web", "backend", "1", map[string]string{"tier": "api"}), "shop"),
		withApp(obj(prodDeps, "batch", "cron", "1", nil), "jobs"),
	)...)
	apply(t, s, relist(prodCMs, "1", withApp(obj(prodCMs, "web", "frontend", "1", nil), "shop"))...)
	apply(t, s, relist(prodCRDeps, "1", obj(prodCRDeps, "web", "frontend", "1", nil))...)
	apply(t, s, relist(stagingDeps, "1", withApp(obj(stagingDeps, "web", "frontend", "1", nil), "shop"))...)
	after := time.Now()

	wantNames(t, s, store.Query{Account: "prod", Group: "apps"},
		"prod/Deployment/batch/cron", "prod/Deployment/web/backend", "prod/Deployment/web/frontend")
	wantNames(t, s, store.Query{Account: "prod", Group: ""}, // empty group does not filter
		"prod/ConfigMap/web/frontend", "prod/Deployment/batch/cron", "prod/Deployment/web/backend",
		"prod/Deployment/web/frontend", "prod/Deployment/web/frontend")
	wantNames(t, s, store.Query{Account: "prod", CoreGroup: true}, "prod/ConfigMap/web/frontend") // the core group only
	wantNames(t, s, store.Query{Kind: "deployment", Group: "apps"},
		"prod/Deployment/batch/cron", "prod/Deployment/web/backend", "prod/Deployment/web/frontend",
		"staging/Deployment/web/frontend")
	wantNames(t, s, store.Query{Account: "prod", Kind: "DEPLOYMENT", Group: "example.com"}, "prod/Deployment/web/frontend")
	wantNames(t, s, store.Query{Account: "prod", Kind: "configmap"}, "prod/ConfigMap/web/frontend")
	wantNames(t, s, store.Query{Account: "prod", Namespace: "batch"}, "prod/Deployment/batch/cron")
	wantNames(t, s, store.Query{Name: "frontend", Group: "apps"}, "prod/Deployment/web/frontend", "staging/Deployment/web/frontend")
	wantNames(t, s, store.Query{Application: "shop"},
		"prod/ConfigMap/web/frontend", "prod/Deployment/web/backend", "prod/Deployment/web/frontend",
		"staging/Deployment/web/frontend")
	wantNames(t, s, store.Query{Account: "staging", Application: "shop", Kind: "Deployment", Namespace: "web", Name: "frontend"},
		"staging/Deployment/web/frontend")
	wantNames(t, s, store.Query{Kind: "ConfigMap", Namespace: "batch"})
	wantNames(t, s, store.Query{Account: "unknown"})
	wantNames(t, s, store.Query{Kind: "Deploy"})

	objs, err := s.ListObjects(context.Background(), store.Query{Account: "prod", Group: "apps", Name: "frontend"})
	if err != nil || len(objs) != 1 {
		t.Fatalf("ListObjects = %+v, %v; want one object", objs, err)
	}
	o := objs[0]
	want := obj(prodDeps, "web", "frontend", "1", map[string]string{"tier": "web"})
	if o.Group != "apps" || o.Version != "v1" || o.Resource != "deployments" || o.UID != want.UID ||
		o.Application != "shop" || o.Labels["tier"] != "web" || string(o.JSON) != string(want.JSON) {
		t.Errorf("ListObjects object = %+v, want %+v", o, want)
	}
	if !withinNow(o.UpdatedAt, before, after) {
		t.Errorf("UpdatedAt = %v, want between %v and %v", o.UpdatedAt, before, after)
	}
}

func testListObjectsSelectorLimit(t *testing.T, s store.Store) {
	st := stream("prod", configMaps(), "")
	var objs []*store.Object
	for i := range 10 {
		l := map[string]string{"tier": "a"}
		if i%2 == 1 {
			l["tier"] = "b"
		}
		if i%3 == 0 {
			l["env"] = "prod"
		}
		objs = append(objs, obj(st, "n", fmt.Sprintf("c%02d", i), "1", l))
	}
	// Listed in reverse: order comes from the store, not insertion.
	slices.Reverse(objs)
	apply(t, s, relist(st, "1", objs...)...)
	// An object without labels.
	apply(t, s, upserted(st, obj(st, "z", "nolabels", "2", nil)))

	sel := func(expr string) labels.Selector {
		t.Helper()
		l, err := labels.Parse(expr)
		if err != nil {
			t.Fatalf("labels.Parse(%q): %v", expr, err)
		}
		return l
	}
	p := func(names ...string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = "prod/ConfigMap/n/" + n
		}
		return out
	}
	wantNames(t, s, store.Query{Selector: sel("tier=a")}, p("c00", "c02", "c04", "c06", "c08")...)
	wantNames(t, s, store.Query{Selector: sel("tier=a"), Limit: 2}, p("c00", "c02")...)
	wantNames(t, s, store.Query{Selector: sel("tier in (a,b),!env"), Limit: 3}, p("c01", "c02", "c04")...)
	wantNames(t, s, store.Query{Selector: sel("env=prod,tier=b")}, p("c03", "c09")...)
	wantNames(t, s, store.Query{Selector: sel("!tier")}, "prod/ConfigMap/z/nolabels")
	wantNames(t, s, store.Query{Selector: sel("tier=c")})
	wantNames(t, s, store.Query{Limit: 3}, p("c00", "c01", "c02")...)
	wantNames(t, s, store.Query{Selector: labels.Everything(), Limit: 2}, p("c00", "c01")...)
	wantNames(t, s, store.Query{Selector: sel("tier=b"), Limit: 100}, p("c01", "c03", "c05", "c07", "c09")...)
	// Names by prefix, alone and with the others.
	apply(t, s, upserted(st, obj(st, "n", "c0~", "3", nil)), upserted(st, obj(st, "n", "c0\x7f", "3", nil)), upserted(st, obj(st, "n", "c1", "3", nil)),
		upserted(st, obj(st, "n", "C0", "3", nil)))
	wantNames(t, s, store.Query{NamePrefix: "c0"}, p("c00", "c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c0~", "c0\x7f")...)
	wantNames(t, s, store.Query{NamePrefix: "c0", Selector: sel("tier=b"), Limit: 2}, p("c01", "c03")...)
	wantNames(t, s, store.Query{NamePrefix: "c05"}, p("c05")...)
	wantNames(t, s, store.Query{NamePrefix: "nol", Namespace: "z"}, "prod/ConfigMap/z/nolabels")
	wantNames(t, s, store.Query{NamePrefix: "d"})
}

func testListObjectsOrder(t *testing.T, s store.Store) {
	var changes []store.Change
	var want []string
	seen := map[string]bool{}
	// A kind in two groups: the group orders objects of one name.
	crDeps := store.Resource{Group: "example.com", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespaced: true}
	for _, account := range []string{"b", "a", "c"} {
		for _, r := range []store.Resource{deployments(), namespaces(), configMaps(), crDeps} {
			st := stream(account, r, "")
			changes = append(changes, syncBegin(st))
			for _, ns := range []string{"zeta", "alpha", "mid"} {
				if !r.Namespaced {
					ns = ""
				}
				for _, name := range []string{"n2", "n10", "n1"} {
					changes = append(changes, listed(st, obj(st, ns, ns+name, "1", nil)))
					if key := account + "/" + r.Kind + "/" + ns + "/" + ns + name; !seen[key+"|"+r.Group] {
						seen[key+"|"+r.Group] = true // cluster-scoped: the same object thrice
						want = append(want, key)
					}
				}
			}
			changes = append(changes, syncEnd(st, "1"))
		}
	}
	apply(t, s, changes...)
	sort.Strings(want) // the two groups' Deployments of one name: adjacent
	wantNames(t, s, store.Query{}, want...)

	// Pages of 7, each after the last object of the previous one, give
	// the same list.
	var paged, groups []string
	q := store.Query{Limit: 7}
	for range len(want) {
		page, err := s.ListObjects(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			paged = append(paged, o.Account+"/"+o.Kind+"/"+o.Namespace+"/"+o.Name)
			groups = append(groups, o.Group)
		}
		if len(page) < q.Limit {
			break
		}
		last := page[len(page)-1].ObjectKey
		q.After = &last
	}
	if !slices.Equal(paged, want) {
		t.Errorf("paged list: %d objects, want the %d of the whole list in order:\n%v\n%v", len(paged), len(want), paged, want)
	}
	for i := 1; i < len(paged); i++ {
		if paged[i] == paged[i-1] && groups[i] <= groups[i-1] {
			t.Errorf("%s: groups %q then %q, want the group order", paged[i], groups[i-1], groups[i])
		}
	}
}

func testNamespaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	nss := stream("prod", namespaces(), "")
	apply(t, s, relist(nss, "1",
		obj(nss, "", "kube-system", "1", nil), obj(nss, "", "default", "1", nil), obj(nss, "", "empty", "1", nil))...)
	cms := stream("prod", configMaps(), "")
	apply(t, s, relist(cms, "1", obj(cms, "default", "x", "1", nil), obj(cms, "team-a", "x", "1", nil),
		obj(cms, "team-a", "y", "1", nil))...)
	deps := stream("prod", deployments(), "team-b")
	apply(t, s, relist(deps, "1", obj(deps, "team-b", "x", "1", nil))...)
	// Cluster-scoped objects that are not core Namespaces do not count.
	roles := stream("prod", store.Resource{Group: "rbac.authorization.k8s.io", Version: "v1",
		Resource: "clusterroles", Kind: "ClusterRole"}, "")
	fakeNS := stream("prod", store.Resource{Group: "example.com", Version: "v1",
		Resource: "namespaces", Kind: "Namespace"}, "")
	apply(t, s, upserted(roles, obj(roles, "", "admin", "1", nil)), upserted(fakeNS, obj(fakeNS, "", "fake", "1", nil)))
	other := stream("staging", configMaps(), "")
	apply(t, s, upserted(other, obj(other, "staging-only", "x", "1", nil)))

	got, err := s.Namespaces(ctx, "prod")
	if err != nil {
		t.Fatalf("Namespaces: %v", err)
	}
	if want := []string{"default", "empty", "kube-system", "team-a", "team-b"}; !slices.Equal(got, want) {
		t.Errorf("Namespaces(prod) = %q, want %q", got, want)
	}
	got, err = s.Namespaces(ctx, "unknown")
	if err != nil || len(got) != 0 {
		t.Errorf("Namespaces(unknown) = %q, %v; want none", got, err)
	}
}

func testCachedAccounts(t *testing.T, s store.Store) {
	assertAccounts(t, s, nil)
	deps := stream("prod", deployments(), "")
	cms := stream("prod", configMaps(), "")
	apply(t, s, relist(deps, "1", obj(deps, "a", "x", "1", nil), obj(deps, "a", "y", "1", nil))...)
	apply(t, s, relist(cms, "1", obj(cms, "a", "x", "1", nil))...)
	apply(t, s, syncBegin(stream("staging", deployments(), "")))
	dev := stream("dev", configMaps(), "ns")
	apply(t, s, upserted(dev, obj(dev, "ns", "x", "1", nil)))
	assertAccounts(t, s, []store.AccountSummary{
		{Account: "dev", Objects: 1, Streams: 1},
		{Account: "prod", Objects: 3, Streams: 2},
		{Account: "staging", Objects: 0, Streams: 1},
	})
}
