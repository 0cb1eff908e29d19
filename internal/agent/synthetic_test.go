package agent

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/agent/scrub"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func TestSyntheticStreamKeys(t *testing.T) {
	base := Account{Name: "a", OnlyNamespacedResources: true, Namespaces: []string{"b", "a"},
		CRDs: []CRD{{Kind: "Widget", Group: "example.com"}}, Kinds: []string{"ConfigMap"}}
	keys := syntheticStreams(base)
	if len(keys) != 2 || keys[0].GetResource().GetKind() != "Namespace" || keys[1].GetResource().GetKind() != "CustomResourceDefinition" {
		t.Fatalf("keys %v: want a Namespace and a CRD stream (kinds does not filter them)", keys)
	}
	for _, k := range keys {
		if !isSynthetic(k) {
			t.Errorf("%v is not marked synthetic", k)
		}
	}
	// The namespaces' order does not matter; their set does.
	reordered := base
	reordered.Namespaces = []string{"a", "b"}
	if !sameStream(keys[0], syntheticStreams(reordered)[0]) {
		t.Error("reordering the namespaces restarts the stream")
	}
	changed := base
	changed.Namespaces = []string{"a"}
	if sameStream(keys[0], syntheticStreams(changed)[0]) {
		t.Error("a changed namespace list keeps the stream")
	}
	for name, a := range map[string]Account{
		"without onlyNamespacedResources": {Name: "a", Namespaces: []string{"x"}, CRDs: base.CRDs},
		"omitKinds":                       {Name: "a", OnlyNamespacedResources: true, Namespaces: []string{"x"}, CRDs: base.CRDs, OmitKinds: []string{"namespace", "customresourcedefinition"}},
	} {
		if k := syntheticStreams(a); len(k) != 0 {
			t.Errorf("%s: synthetic streams %v, want none", name, k)
		}
	}
}

// syntheticCRDs reads plural, versions and scope from a real API server's
// discovery, matches kind and group case-insensitively, and names the
// kinds it does not serve.
func TestSyntheticCRDsFromDiscovery(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gizmos.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Cluster",
			"names": map[string]any{"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"},
			"versions": []any{
				map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object"}}},
				map[string]any{"name": "v1beta1", "served": true, "storage": false, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object"}}},
			},
		},
	}}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	a := Account{Name: "a", CRDs: []CRD{{Kind: "gizmo", Group: "EXAMPLE.com"}, {Kind: "Nope", Group: "example.com"}}}
	var objs []*unstructured.Unstructured
	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The new group reaches discovery a moment after the CRD is
		// created, and its versions one at a time: wait for both.
		objs, missing, err = syntheticCRDs(dc, a)
		if err == nil && len(objs) == 1 {
			if v, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "versions"); len(v) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || len(objs) != 1 || len(missing) != 1 || missing[0] != "Nope.example.com" {
		t.Fatalf("syntheticCRDs: %d objects, missing %v, err %v", len(objs), missing, err)
	}
	o := objs[0]
	scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
	kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
	group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
	versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
	if o.GetName() != "gizmos.example.com" || scope != "Cluster" || kind != "Gizmo" || group != "example.com" || len(versions) != 2 {
		t.Errorf("synthetic CRD %v", o.Object)
	}
}

// The runner sends its objects as one list, and again only when they
// change; a failed build is reported and retried.
func TestSyntheticRunnerSendsOnChange(t *testing.T) {
	var mu sync.Mutex
	var sent []string // the kinds of changes, in order
	var reports []error
	builds := 0
	objects := func(names ...string) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, n := range names {
			out = append(out, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": n}}})
		}
		return out
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key := &kubesvcv1.StreamKey{Account: "a", Resource: syntheticNamespaceResource, SelectorHash: syntheticPrefix + "x"}
	r := &syntheticRunner{
		streamRunner: &streamRunner{key: key, scrubber: scrub.New(), stats: &Stats{}, log: discardLogger(),
			emit: func(_ context.Context, c *kubesvcv1.Change) error {
				mu.Lock()
				defer mu.Unlock()
				switch c.GetChange().(type) {
				case *kubesvcv1.Change_SyncBegin:
					sent = append(sent, "begin")
				case *kubesvcv1.Change_Listed:
					sent = append(sent, c.GetListed().GetName())
				case *kubesvcv1.Change_SyncEnd:
					sent = append(sent, "end")
				}
				return nil
			},
			report: func(h streamHealth) { mu.Lock(); defer mu.Unlock(); reports = append(reports, h.err) },
		},
		every: time.Millisecond,
		build: func(context.Context) ([]*unstructured.Unstructured, error) {
			mu.Lock()
			defer mu.Unlock()
			builds++
			switch {
			case builds <= 3:
				return objects("a", "b"), nil
			case builds == 4:
				return nil, context.DeadlineExceeded // discovery failed once
			case builds <= 6:
				return objects("a"), nil
			}
			cancel()
			return objects("a"), nil
		},
	}
	if err := r.run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"begin", "a", "b", "end", "begin", "a", "end"}
	if len(sent) != len(want) {
		t.Fatalf("sent %v, want %v (unchanged lists are not sent again)", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] {
			t.Fatalf("sent %v, want %v", sent, want)
		}
	}
	if len(reports) < 2 || reports[0] != nil || !slices.Contains(reports, error(context.DeadlineExceeded)) || reports[len(reports)-1] != nil {
		t.Errorf("reports %v: want served, the failure, served again", reports)
	}
}

// A refresh (after a rediscovery) builds the objects again at once,
// long before the periodic build.
func TestSyntheticRunnerRefresh(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	refresh := make(chan struct{}, 1)
	built := make(chan int, 8)
	builds := 0
	key := &kubesvcv1.StreamKey{Account: "a", Resource: syntheticCRDResource, SelectorHash: syntheticPrefix + "x"}
	r := &syntheticRunner{
		streamRunner: &streamRunner{key: key, scrubber: scrub.New(), stats: &Stats{}, log: discardLogger(),
			emit:   func(context.Context, *kubesvcv1.Change) error { return nil },
			report: func(streamHealth) {},
		},
		every:   time.Hour,
		refresh: refresh,
		build: func(context.Context) ([]*unstructured.Unstructured, error) {
			builds++
			built <- builds
			return nil, nil
		},
	}
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	if n := <-built; n != 1 {
		t.Fatalf("build %d first", n)
	}
	refresh <- struct{}{}
	select {
	case n := <-built:
		if n != 2 {
			t.Fatalf("build %d after the refresh", n)
		}
	case <-time.After(time.Minute):
		t.Fatal("a refresh did not build again (the next build is an hour away)")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
