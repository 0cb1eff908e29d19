package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// Read-your-writes for operations names the object's group, "" for the
// core one: a core Service is found although a Knative Service of the
// same name is cached too.
func TestWaitCachedTellsTheCoreGroupApart(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	ctx := context.Background()
	for _, r := range []store.Resource{
		{Version: "v1", Resource: "services", Kind: "Service", Namespaced: true},
		{Group: "serving.knative.dev", Version: "v1", Resource: "services", Kind: "Service", Namespaced: true},
	} {
		st := store.StreamKey{Account: "main", Resource: r}
		o := &store.Object{ObjectKey: store.ObjectKey{Namespace: "ns", Name: "hello"}, ResourceVersion: "7", JSON: []byte(`{}`)}
		if err := cp.st.ApplyChanges(ctx, []store.Change{{Type: store.Upserted, Stream: st, Object: o}}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, group := range []string{"", "serving.knative.dev"} {
		if err := cp.srv.WaitCached(wctx, store.ObjectKey{Account: "main", Group: group, Kind: "Service", Namespace: "ns", Name: "hello"}, "7"); err != nil {
			t.Errorf("WaitCached of the Service of group %q: %v", group, err)
		}
	}
	// The read API: group= is the core group, no group any.
	for query, want := range map[string]int{"account=main&kind=Service&group=": 1, "account=main&kind=Service": 2} {
		resp, err := http.Get(cp.http + "/cache/objects?" + query)
		if err != nil {
			t.Fatal(err)
		}
		var objs []struct{ APIVersion string }
		err = json.NewDecoder(resp.Body).Decode(&objs)
		resp.Body.Close()
		if err != nil || len(objs) != want || (want == 1 && objs[0].APIVersion != "v1") {
			t.Errorf("?%s: %+v (%v), want %d", query, objs, err, want)
		}
	}
}
