package operations

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A clientRequestId becomes the task id, a path segment of the task's
// resourceUri: one that could not be one is refused, and nothing runs. The
// history's page size is bounded.
func TestClientRequestIDMustBeAPathSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	m := New(Config{ReplicaID: "r1", Log: slog.New(slog.DiscardHandler)}, st, &answeringAgents{release: make(chan struct{})})
	defer m.wg.Wait()
	mux := http.NewServeMux()
	m.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := `[{"scaleManifest": {"account": "main", "manifestName": "deployment web", "location": "default", "replicas": 2}}]`
	for _, id := range []string{"a/b", "a b", "../x", "é"} {
		resp, err := http.Post(srv.URL+"/kubernetes/ops?clientRequestId="+strings.ReplaceAll(id, " ", "%20"), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "clientRequestId") {
			t.Errorf("clientRequestId %q: %d %s, want 400 naming clientRequestId", id, resp.StatusCode, b)
		}
	}
	if ops, err := st.ListOperations(ctx, 10); err != nil || len(ops) != 0 {
		t.Errorf("refused requests recorded tasks: %v %v", ops, err)
	}
	for _, limit := range []string{"0", "-1", "ten", "10001"} {
		resp, err := http.Get(srv.URL + "/armory/agent/operations?limit=" + limit)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "limit") {
			t.Errorf("history with limit %s: %d %s, want 400 naming limit", limit, resp.StatusCode, b)
		}
	}
}
