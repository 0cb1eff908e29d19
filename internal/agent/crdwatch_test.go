package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// crdAPI is a TEST DOUBLE OF THE API SERVER'S CustomResourceDefinition
// endpoint (faults a real one cannot be made to show on cue): the first
// failLists lists answer listStatus; later lists succeed; watches send
// one ADDED event and stay open, or with closeWatches end at once.
type crdAPI struct {
	failLists    int32
	listStatus   int
	closeWatches bool

	lists, watches atomic.Int32
}

func (c *crdAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("watch") != "true" {
		if n := c.lists.Add(1); n <= c.failLists {
			w.WriteHeader(c.listStatus)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":%d}`, c.listStatus)
			return
		}
		fmt.Fprint(w, `{"kind":"CustomResourceDefinitionList","apiVersion":"apiextensions.k8s.io/v1","metadata":{"resourceVersion":"5"},"items":[]}`)
		return
	}
	c.watches.Add(1)
	if c.closeWatches {
		return
	}
	fmt.Fprint(w, `{"type":"ADDED","object":{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1","metadata":{"name":"widgets.example.com","resourceVersion":"6"}}}`+"\n")
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func startCRDAPI(t *testing.T, c *crdAPI) dynamic.Interface {
	t.Helper()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// The CRD watch outlasts an API server that is unavailable for a while (it
// used to give up after 6 failures), stops for good on 403, and pauses
// between watches that the server closes at once.
func TestWatchCRDs(t *testing.T) {
	t.Parallel()
	fast := func(int) time.Duration { return time.Millisecond }
	run := func(dyn dynamic.Interface, changed chan struct{}, delay func(int) time.Duration) (stop func(), done chan struct{}) {
		ctx, cancel := context.WithCancel(context.Background())
		done = make(chan struct{})
		go func() {
			defer close(done)
			watchCRDs(ctx, dyn, "", changed, delay)
		}()
		return cancel, done
	}

	t.Run("unavailable, then back", func(t *testing.T) {
		api := &crdAPI{failLists: 20, listStatus: http.StatusServiceUnavailable}
		changed := make(chan struct{}, 1)
		stop, done := run(startCRDAPI(t, api), changed, fast)
		defer func() { stop(); <-done }()
		select {
		case <-changed:
		case <-done:
			t.Fatalf("gave up after %d lists", api.lists.Load())
		case <-time.After(20 * time.Second):
			t.Fatalf("no change signalled within 20 s (%d lists, %d watches)", api.lists.Load(), api.watches.Load())
		}
		if api.lists.Load() <= 20 || api.watches.Load() == 0 {
			t.Errorf("%d lists and %d watches, want more than 20 and a watch", api.lists.Load(), api.watches.Load())
		}
	})

	t.Run("forbidden", func(t *testing.T) {
		api := &crdAPI{failLists: 1 << 30, listStatus: http.StatusForbidden}
		stop, done := run(startCRDAPI(t, api), make(chan struct{}, 1), fast)
		defer stop()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("still retrying after 20 s on 403 (%d lists)", api.lists.Load())
		}
	})

	t.Run("watches closed at once", func(t *testing.T) {
		api := &crdAPI{closeWatches: true}
		var mu sync.Mutex
		var pauses []int
		delay := func(failures int) time.Duration {
			mu.Lock()
			pauses = append(pauses, failures)
			mu.Unlock()
			return time.Millisecond
		}
		stop, done := run(startCRDAPI(t, api), make(chan struct{}, 1), delay)
		deadline := time.Now().Add(20 * time.Second)
		for api.watches.Load() < 4 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(pauses) < 3 || pauses[0] != 1 || pauses[1] != 2 || pauses[2] != 3 {
			t.Errorf("pauses between %d watches closed at once: %v, want growing ones (1, 2, 3...)", api.watches.Load(), pauses)
		}
	})
}

// Started from a resource version read earlier, the CRD watch signals a
// CRD created since, before it started: the agent reads the version
// before its first discovery, so that a CRD created between that
// discovery and the watch is not missed.
func TestWatchCRDsFromAnEarlierVersion(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from := crdResourceVersion(ctx, dyn)
	if from == "" {
		t.Fatal("no resource version for the CRDs")
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gadgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object"}}}},
		},
	}}
	if _, err := dyn.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Settled (the API server's controllers write its status once it is
	// served): a watch from now on would see nothing of it.
	waitFor(t, "the CRD established", func() bool {
		got, err := dyn.Resource(crdResource).Get(ctx, "gadgets.example.com", metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	})
	changed := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchCRDs(ctx, dyn, from, changed, retryDelay)
	}()
	select {
	case <-changed:
	case <-time.After(2 * time.Minute):
		t.Fatal("the CRD created after the version the watch started from was not signalled")
	}
	cancel()
	<-done
}
