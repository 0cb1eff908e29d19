package agent

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLogger writes the agent's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// gr is "group|resource" of a key, "|pods" for core.
func gr(k *kubesvcv1.StreamKey) string {
	return k.GetResource().GetGroup() + "|" + k.GetResource().GetResource()
}

func keysByGR(keys []*kubesvcv1.StreamKey) map[string][]*kubesvcv1.StreamKey {
	m := map[string][]*kubesvcv1.StreamKey{}
	for _, k := range keys {
		m[gr(k)] = append(m[gr(k)], k)
	}
	return m
}

func TestDiscoverStreamsAgainstAPIServer(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cfg := cluster.RESTConfig()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// A CRD served in two versions, the preferred one being v2, and with a
	// status subresource.
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gadgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
			"versions": []any{
				map[string]any{
					"name": "v1", "served": true, "storage": true,
					"schema":       map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
					"subresources": map[string]any{"status": map[string]any{}},
				},
				map[string]any{
					"name": "v2", "served": true, "storage": false,
					"schema":       map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
					"subresources": map[string]any{"status": map[string]any{}},
				},
			},
		},
	}}
	crdClient := dyn.Resource(crdResource)
	if _, err := crdClient.Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The API server adds a CRD's versions to discovery one at a time, in
	// no set order, and each to the aggregated document (what ServerGroups
	// and discoverStreams read) a moment after its own endpoint: wait
	// until the aggregated document has both, v2 preferred, and both
	// endpoints list the gadgets.
	waitFor(t, "both versions of the CRD to be discoverable", func() bool {
		groups, err := dc.ServerGroups()
		if err != nil {
			return false
		}
		for _, g := range groups.Groups {
			if g.Name != "example.com" {
				continue
			}
			if len(g.Versions) != 2 || g.PreferredVersion.Version != "v2" {
				return false
			}
			for _, v := range []string{"v1", "v2"} {
				if rs, err := dc.ServerResourcesForGroupVersion("example.com/" + v); err != nil || len(rs.APIResources) == 0 {
					return false
				}
			}
			return true
		}
		return false
	})

	// The preferred version of every group, as the API server states it.
	groups, err := dc.ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	preferred := map[string]string{}
	for _, g := range groups.Groups {
		preferred[g.Name] = g.PreferredVersion.Version
	}

	all, failed, err := discoverStreams(dc, Account{Name: "acct"}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 0 {
		t.Errorf("groups failed discovery: %v", failed)
	}
	byGR := keysByGR(all)

	t.Run("one stream per resource, in its preferred version", func(t *testing.T) {
		for g, keys := range byGR {
			if len(keys) != 1 {
				t.Errorf("%s: %d streams", g, len(keys))
			}
			r := keys[0].GetResource()
			if want := preferred[r.GetGroup()]; r.GetVersion() != want {
				t.Errorf("%s: version %s, want the preferred %s", g, r.GetVersion(), want)
			}
			if keys[0].GetAccount() != "acct" || keys[0].GetNamespace() != "" {
				t.Errorf("%s: key %v", g, keys[0])
			}
		}
		// Groups served in several versions prove the point.
		for _, c := range []struct{ gr, version string }{
			{"example.com|gadgets", "v2"},
			{"autoscaling|horizontalpodautoscalers", preferred["autoscaling"]},
		} {
			if ks := byGR[c.gr]; len(ks) != 1 || ks[0].GetResource().GetVersion() != c.version {
				t.Errorf("%s: %v, want exactly one stream at %s", c.gr, ks, c.version)
			}
		}
		if preferred["autoscaling"] != "v2" {
			t.Logf("note: autoscaling prefers %s on this server", preferred["autoscaling"])
		}
	})

	t.Run("kind, scope and order", func(t *testing.T) {
		for _, c := range []struct {
			gr, kind   string
			namespaced bool
		}{
			{"|pods", "Pod", true},
			{"|namespaces", "Namespace", false},
			{"|nodes", "Node", false},
			{"apps|deployments", "Deployment", true},
			{"example.com|gadgets", "Gadget", true},
			{"apiextensions.k8s.io|customresourcedefinitions", "CustomResourceDefinition", false},
		} {
			ks := byGR[c.gr]
			if len(ks) != 1 {
				t.Errorf("%s: %d streams, want 1", c.gr, len(ks))
				continue
			}
			if r := ks[0].GetResource(); r.GetKind() != c.kind || r.GetNamespaced() != c.namespaced {
				t.Errorf("%s: kind %q namespaced %v, want %q %v", c.gr, r.GetKind(), r.GetNamespaced(), c.kind, c.namespaced)
			}
		}
		if !slices.IsSortedFunc(all, func(a, b *kubesvcv1.StreamKey) int { return strings.Compare(streamID(a), streamID(b)) }) {
			t.Error("keys not sorted by stream id")
		}
	})

	t.Run("subresources and non-watchable resources excluded", func(t *testing.T) {
		for _, k := range all {
			if strings.Contains(k.GetResource().GetResource(), "/") {
				t.Errorf("subresource streamed: %s", gr(k))
			}
		}
		for _, g := range []string{
			"|bindings",          // create only
			"|componentstatuses", // get, list: no watch
			"authentication.k8s.io|tokenreviews",
			"authorization.k8s.io|selfsubjectaccessreviews",
		} {
			if _, ok := byGR[g]; ok {
				t.Errorf("%s streamed, but it cannot be listed and watched", g)
			}
		}
		// Every stream really supports list and watch on this server.
		lists, err := dc.ServerPreferredResources()
		if err != nil {
			t.Fatal(err)
		}
		verbs := map[string][]string{}
		for _, l := range lists {
			gv, _ := schema.ParseGroupVersion(l.GroupVersion)
			for _, r := range l.APIResources {
				verbs[gv.Group+"|"+r.Name] = r.Verbs
			}
		}
		for _, k := range all {
			v := verbs[gr(k)]
			if !slices.Contains(v, "list") || !slices.Contains(v, "watch") {
				t.Errorf("%s streamed with verbs %v", gr(k), v)
			}
		}
		// And every preferred list+watch resource, bar the events copy, is streamed.
		for g, v := range verbs {
			if strings.Contains(g, "/") || g == "events.k8s.io|events" || !slices.Contains(v, "list") || !slices.Contains(v, "watch") {
				continue
			}
			if _, ok := byGR[g]; !ok {
				t.Errorf("%s can be listed and watched but is not streamed", g)
			}
		}
	})

	t.Run("events.k8s.io events excluded, core events kept", func(t *testing.T) {
		if _, ok := byGR["events.k8s.io|events"]; ok {
			t.Error("events.k8s.io events streamed")
		}
		if _, ok := byGR["|events"]; !ok {
			t.Error("core events not streamed")
		}
	})

	t.Run("namespaces fan out namespaced resources only", func(t *testing.T) {
		keys, _, err := discoverStreams(dc, Account{Name: "acct", Namespaces: []string{"team-a", "team-b"}}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		m := keysByGR(keys)
		if len(m) != len(byGR) {
			t.Errorf("%d resources with namespaces, %d without", len(m), len(byGR))
		}
		for g, ks := range m {
			var nss []string
			for _, k := range ks {
				nss = append(nss, k.GetNamespace())
			}
			want := []string{""}
			if ks[0].GetResource().GetNamespaced() {
				want = []string{"team-a", "team-b"}
			}
			if !slices.Equal(nss, want) {
				t.Errorf("%s: namespaces %q, want %q", g, nss, want)
			}
		}
		for _, g := range []string{"|pods", "apps|deployments", "example.com|gadgets"} {
			if len(m[g]) != 2 {
				t.Errorf("%s: %d streams, want 2", g, len(m[g]))
			}
		}
		for _, g := range []string{"|namespaces", "|nodes"} {
			if len(m[g]) != 1 || m[g][0].GetNamespace() != "" {
				t.Errorf("%s: %v, want one cluster-wide stream", g, m[g])
			}
		}
		ids := map[string]bool{}
		for _, k := range keys {
			if ids[streamID(k)] {
				t.Errorf("duplicate stream id %s", streamID(k))
			}
			ids[streamID(k)] = true
		}
	})

	t.Run("onlyNamespacedResources", func(t *testing.T) {
		keys, _, err := discoverStreams(dc, Account{Name: "acct", OnlyNamespacedResources: true}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		m := keysByGR(keys)
		for g, ks := range m {
			if !ks[0].GetResource().GetNamespaced() {
				t.Errorf("cluster-scoped %s streamed", g)
			}
		}
		for _, g := range []string{"|pods", "|configmaps", "apps|deployments", "example.com|gadgets"} {
			if _, ok := m[g]; !ok {
				t.Errorf("%s missing", g)
			}
		}
		for _, g := range []string{"|namespaces", "|nodes", "apiextensions.k8s.io|customresourcedefinitions"} {
			if _, ok := m[g]; ok {
				t.Errorf("%s streamed", g)
			}
		}
		n := 0
		for _, ks := range byGR {
			if ks[0].GetResource().GetNamespaced() {
				n++
			}
		}
		if len(m) != n {
			t.Errorf("%d namespaced streams, want all %d", len(m), n)
		}
	})

	t.Run("kinds and omitKinds", func(t *testing.T) {
		for _, c := range []struct {
			acct Account
			want []string
		}{
			{Account{Kinds: []string{"deployment", "ConfigMap", "gadget.example.com"}}, []string{"apps|deployments", "example.com|gadgets", "|configmaps"}},
			{Account{Kinds: []string{"Event"}}, []string{"|events"}},
			{Account{Kinds: []string{"event.events.k8s.io"}}, nil},
			{Account{Kinds: []string{"Gadget.other.example.com"}}, nil},
			{Account{Kinds: []string{"namespace"}, Namespaces: []string{"x"}}, []string{"|namespaces"}},
			{Account{Kinds: []string{"pod", "namespace"}, OnlyNamespacedResources: true}, []string{"|pods"}},
		} {
			c.acct.Name = "acct"
			keys, _, err := discoverStreams(dc, c.acct, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, gr(k))
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("kinds %q: streams %q, want %q", c.acct.Kinds, got, c.want)
			}
		}
		keys, _, err := discoverStreams(dc, Account{Name: "acct", OmitKinds: []string{"pod", "secret", "deployment.apps"}}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		m := keysByGR(keys)
		for _, g := range []string{"|pods", "|secrets", "apps|deployments"} {
			if _, ok := m[g]; ok {
				t.Errorf("omitted %s streamed", g)
			}
		}
		if len(m) != len(byGR)-3 {
			t.Errorf("omitting 3 kinds left %d of %d streams", len(m), len(byGR))
		}
	})

	// A stream key carries the fingerprint of the field selector its runner
	// lists and watches with (accountRunner passes namespaceSelector(k,
	// OmitNamespaces)), so that a resume point recorded under another
	// selector is not resumed.
	t.Run("omitNamespaces: keys carry their selector's hash", func(t *testing.T) {
		omit := []string{"kube-system"}
		keys, _, err := discoverStreams(dc, Account{Name: "acct", OmitNamespaces: omit}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		m := keysByGR(keys)
		for _, g := range []string{"|pods", "|namespaces", "example.com|gadgets"} {
			k := m[g][0]
			if want := selectorHash(namespaceSelector(k, omit)); k.GetSelectorHash() != want || want == "" {
				t.Errorf("%s: selector hash %q, want %q", g, k.GetSelectorHash(), want)
			}
		}
		for _, g := range []string{"|nodes", "apiextensions.k8s.io|customresourcedefinitions"} {
			if h := m[g][0].GetSelectorHash(); h != "" {
				t.Errorf("cluster-scoped %s has selector hash %q", g, h)
			}
		}
		plain := keysByGR(all)["|pods"][0]
		if plain.GetSelectorHash() != "" || sameStream(plain, m["|pods"][0]) {
			t.Errorf("adding omitNamespaces keeps the stream the same: %v vs %v", plain, m["|pods"][0])
		}
	})

	t.Run("namespaces and omitNamespaces: fanned-out keys carry their selector's hash", func(t *testing.T) {
		omit := []string{"team-b"}
		keys, _, err := discoverStreams(dc, Account{Name: "acct", Namespaces: []string{"team-a", "team-b"}, OmitNamespaces: omit}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if want := selectorHash(namespaceSelector(k, omit)); k.GetSelectorHash() != want {
				t.Errorf("%s: selector hash %q, but the runner uses %q (hash %q)", streamID(k), k.GetSelectorHash(), namespaceSelector(k, omit), want)
			}
		}
	})

	// The selectors namespaceSelector builds are accepted by a real API
	// server and exclude what they should.
	t.Run("omitNamespaces selectors work on the API server", func(t *testing.T) {
		ctx := context.Background()
		for _, ns := range []string{"keep", "drop-1", "drop-2"} {
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			gadget := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v2", "kind": "Gadget", "metadata": map[string]any{"name": "g", "namespace": ns}}}
			if _, err := dyn.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v2", Resource: "gadgets"}).Namespace(ns).Create(ctx, gadget, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		omit := []string{"drop-1", "drop-2"}
		for _, g := range []string{"|namespaces", "|configmaps", "example.com|gadgets", "|nodes"} {
			k := byGR[g][0]
			sel := namespaceSelector(k, omit)
			list, err := dyn.Resource(gvr(k)).List(ctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil {
				t.Fatalf("%s with selector %q: %v", g, sel, err)
			}
			for _, o := range list.Items {
				if slices.Contains(omit, o.GetNamespace()) || (g == "|namespaces" && slices.Contains(omit, o.GetName())) {
					t.Errorf("%s with selector %q returned %s/%s", g, sel, o.GetNamespace(), o.GetName())
				}
			}
			if g == "|configmaps" || g == "example.com|gadgets" || g == "|namespaces" {
				found := false
				for _, o := range list.Items {
					found = found || o.GetNamespace() == "keep" || o.GetName() == "keep"
				}
				if !found {
					t.Errorf("%s with selector %q lost the kept namespace", g, sel)
				}
			}
			// The same selector is accepted by a watch.
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			w, err := dyn.Resource(gvr(k)).Watch(wctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.GetResourceVersion()})
			if err != nil {
				t.Errorf("%s: watch with selector %q: %v", g, sel, err)
			} else {
				w.Stop()
			}
			cancel()
		}
	})
}
