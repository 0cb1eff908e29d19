package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// One kind in two groups (a core and a Knative Service of one name):
// read-your-writes for operations names the group, "" for the core one,
// and finds each; the read API pages through both and selects the core
// one with group=.
func TestReadsOfOneKindInTwoGroups(t *testing.T) {
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
	// Pages: a full page carries the token of the next.
	var seen []string
	tok := ""
	for range 4 {
		resp, err := http.Get(cp.http + "/cache/objects?account=main&limit=1&continue=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		var objs []struct{ APIVersion string }
		err = json.NewDecoder(resp.Body).Decode(&objs)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("page after %q: %d %v", tok, resp.StatusCode, err)
		}
		for _, o := range objs {
			seen = append(seen, o.APIVersion)
		}
		if tok = resp.Header.Get("X-Continue"); tok == "" {
			break
		}
	}
	if len(seen) != 2 || seen[0] != "serving.knative.dev/v1" && seen[0] != "v1" || seen[0] == seen[1] {
		t.Errorf("pages of one gave %v, want both Services once", seen)
	}
	for _, tok := range []string{"bogus", continueOf(`["a","b","c","\u00e9",""]`)} {
		resp, err := http.Get(cp.http + "/cache/objects?continue=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a made-up continue token %q: %d, want 400", tok, resp.StatusCode)
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

// continueOf encodes a continue token as the read API does.
func continueOf(fields string) string { return base64.RawURLEncoding.EncodeToString([]byte(fields)) }
