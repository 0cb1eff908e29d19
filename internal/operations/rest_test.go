package operations

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// serveOps serves a manager's routes on a fresh store, with agents that
// never answer.
func serveOps(t *testing.T) (store.Store, *httptest.Server) {
	t.Helper()
	st := openStore(t)
	m := New(Config{ReplicaID: "r1", Log: slog.New(slog.DiscardHandler)}, st, &answeringAgents{release: make(chan struct{})})
	t.Cleanup(m.wg.Wait)
	mux := http.NewServeMux()
	m.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return st, srv
}

// A clientRequestId becomes the task id, a path segment of the task's
// resourceUri: one that could not be one is refused, and nothing runs. The
// history's page size is bounded.
func TestClientRequestIDMustBeAPathSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, srv := serveOps(t)
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
	if ops, err := st.ListOperations(ctx, 10, 0); err != nil || len(ops) != 0 {
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

// The history pages as the contract says (items, page), and the operation
// API refuses query parameters it does not take: a misspelt
// clientRequestId would otherwise run the operation again.
func TestHistoryPagesAndQueryParameters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, srv := serveOps(t)
	t0 := time.Now().Add(-time.Hour)
	for i := range 5 {
		if err := st.CreateOperation(ctx, store.Operation{ID: fmt.Sprintf("op-%d", i), State: "RUNNING", ReceivedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for query, want := range map[string][]string{
		"":                 {"op-4", "op-3", "op-2", "op-1", "op-0"},
		"?items=2":         {"op-4", "op-3"},
		"?items=2&page=2":  {"op-2", "op-1"},
		"?page=3&items=2":  {"op-0"},
		"?items=2&page=4":  {},
		"?limit=1":         {"op-4"},
		"?limit=1&page=5":  {"op-0"},
		"?limit=&page=":    {"op-4", "op-3", "op-2", "op-1", "op-0"},
		"?items=10&page=1": {"op-4", "op-3", "op-2", "op-1", "op-0"},
	} {
		code, body := get("/armory/agent/operations" + query)
		var recs []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(body), &recs); code != http.StatusOK || err != nil {
			t.Errorf("%s: %d %s", query, code, body)
			continue
		}
		ids := []string{}
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s: %v, want %v", query, ids, want)
		}
	}
	for path, mention := range map[string]string{
		"/armory/agent/operations?page=0":          "page",
		"/armory/agent/operations?items=1&limit=1": "items and limit",
		"/armory/agent/operations?pgae=2":          "pgae",
		"/armory/agent/operations/op-1?x=1":        `parameter \"x\"`,
		"/task/op-1?wait=10":                       `parameter \"wait\"`,
	} {
		if code, body := get(path); code != http.StatusBadRequest || !strings.Contains(body, mention) {
			t.Errorf("%s: %d %s, want 400 naming %s", path, code, body, mention)
		}
	}
	body := `[{"scaleManifest": {"account": "main", "manifestName": "deployment web", "location": "default", "replicas": 2}}]`
	resp, err := http.Post(srv.URL+"/kubernetes/ops?clientRequestID=abc", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "clientRequestID") {
		t.Errorf("misspelt clientRequestId: %d %s", resp.StatusCode, b)
	}
	if _, err := st.GetOperation(ctx, "abc"); err == nil {
		t.Error("the refused request recorded a task")
	}
}
