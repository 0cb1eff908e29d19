package controlplane

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// restEnv is a server on a SQLite store, not running (no listeners, no
// agents), its REST routes served by httptest.
type restEnv struct {
	s   *Server
	st  store.Store
	url string
}

func newRESTEnv(t *testing.T) *restEnv {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cp.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s, err := New(Config{ID: "cp-1", Log: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.routes())
	t.Cleanup(srv.Close)
	return &restEnv{s: s, st: st, url: srv.URL}
}

// call answers the status, the headers and the error message (or the
// body, when it is not an error).
func (e *restEnv) call(t *testing.T, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var apiErr struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &apiErr); err != nil || apiErr.Status != resp.StatusCode {
			t.Errorf("%s %s: %d answered %q, not a JSON error", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, resp.Header, apiErr.Message
	}
	return resp.StatusCode, resp.Header, string(b)
}

// want checks a 4xx answer and that its message says says.
func (e *restEnv) want(t *testing.T, method, path, body string, code int, says string) {
	t.Helper()
	got, _, msg := e.call(t, method, path, body)
	if got != code || !strings.Contains(msg, says) {
		t.Errorf("%s %s %s: %d %q, want %d saying %q", method, path, body, got, msg, code, says)
	}
}

// Bodies of the wrong JSON types get a 400 naming the field in JSON's
// terms, not Go's.
func TestBodyDecodeErrorsSpeakJSON(t *testing.T) {
	t.Parallel()
	e := newRESTEnv(t)
	for _, c := range []struct{ path, body, says string }{
		{"/armory/agent/a1/disconnect", `{"timestamp": "2024-01-01"}`, "timestamp: expected number, got string"},
		{"/armory/agent/a1/disconnect", `{"clusterDriven": 1}`, "clusterDriven: expected boolean, got number"},
		{"/armory/agent/a1/disconnect", `{"origin": "x"`, "body: malformed JSON"},
		{"/armory/agent/assignments", `{"a": 1}`, "body: expected array, got object"},
		{"/armory/agent/assignments", `["a", 2]`, "body: expected string, got number"},
		{"/armory/agent/a1/commands", `{"command": {}}`, "command: expected string, got object"},
	} {
		got, _, msg := e.call(t, http.MethodPost, c.path, c.body)
		if got != http.StatusBadRequest || !strings.Contains(msg, c.says) || strings.Contains(msg, "Go ") {
			t.Errorf("POST %s %s: %d %q, want 400 saying %q", c.path, c.body, got, msg, c.says)
		}
	}
}

// Unknown paths and methods are JSON errors; the Kubernetes API proxy's
// paths still answer Kubernetes Status objects.
func TestUnknownRoutesAnswerJSON(t *testing.T) {
	t.Parallel()
	e := newRESTEnv(t)
	e.want(t, "GET", "/armory/acounts", "", http.StatusNotFound, `no endpoint GET "/armory/acounts"`)
	e.want(t, "POST", "/cache/objects", "", http.StatusMethodNotAllowed, `method POST is not allowed on "/cache/objects"; allowed: GET, HEAD`)
	if _, h, _ := e.call(t, "DELETE", "/armory/agents", ""); h.Get("Allow") != "GET, HEAD" {
		t.Errorf("405 with Allow %q, want GET, HEAD", h.Get("Allow"))
	}
	resp, err := http.Get(e.url + "/agents/kubernetes/accounts/prod/proxy/api/v1/pods")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var status struct{ Kind, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil || resp.StatusCode != http.StatusNotFound || status.Kind != "Status" || status.Status != "Failure" {
		t.Errorf("proxy path: %d %+v %v, want a Kubernetes Status 404", resp.StatusCode, status, err)
	}
}

// seed caches objects of kind ConfigMap (namespaced) in account main, each
// at resourceVersion rv.
func (e *restEnv) seed(t *testing.T, rv string, namespacedNames ...string) {
	t.Helper()
	st := store.StreamKey{Account: "main", Resource: store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	var changes []store.Change
	for _, nn := range namespacedNames {
		ns, name, _ := strings.Cut(nn, "/")
		changes = append(changes, store.Change{Type: store.Upserted, Stream: st, Object: &store.Object{
			ObjectKey: store.ObjectKey{Account: "main", Kind: "ConfigMap", Namespace: ns, Name: name}, Version: "v1",
			ResourceVersion: rv, JSON: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`),
		}})
	}
	if err := e.st.ApplyChanges(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
}

// A minResourceVersion that is not a decimal unsigned integer is a 400
// naming it, not a wait that ends in a 504.
func TestMinResourceVersionMustBeANumber(t *testing.T) {
	t.Parallel()
	e := newRESTEnv(t)
	e.seed(t, "10", "ns/x")
	for _, rv := range []string{"abc", "-1", "1.5", "0x10", "99999999999999999999"} {
		e.want(t, "GET", "/cache/objects/main/ConfigMap/x?namespace=ns&minResourceVersion="+rv, "", http.StatusBadRequest, "minResourceVersion")
	}
	if code, _, body := e.call(t, "GET", "/cache/objects/main/ConfigMap/x?namespace=ns&minResourceVersion=9", ""); code != http.StatusOK {
		t.Errorf("minResourceVersion=9 of an object at 10: %d %s", code, body)
	}
	e.want(t, "GET", "/cache/objects/main/ConfigMap/x?namespace=ns&minResourceVersion=11", "", http.StatusGatewayTimeout, "not yet 11")
}

// A get without namespace= looks for a cluster-scoped object, and its 404
// says so.
func TestGetWithoutNamespaceSaysItLookedForAClusterScopedObject(t *testing.T) {
	t.Parallel()
	e := newRESTEnv(t)
	e.seed(t, "10", "ns/x")
	e.want(t, "GET", "/cache/objects/main/ConfigMap/x", "", http.StatusNotFound, "cluster-scoped")
	e.want(t, "GET", "/cache/objects/main/ConfigMap/x", "", http.StatusNotFound, "?namespace=")
	e.want(t, "GET", "/cache/objects/main/ConfigMap/y?namespace=ns", "", http.StatusNotFound, `in namespace "ns"`)
	if code, _, body := e.call(t, "GET", "/cache/objects/main/ConfigMap/x?namespace=ns", ""); code != http.StatusOK {
		t.Errorf("get with its namespace: %d %s", code, body)
	}
}

// Every /armory and /agents endpoint (but the operations' and the proxy's)
// refuses query parameters it does not take, naming them; /cache lists
// those it takes.
func TestUnknownQueryParametersAreRefused(t *testing.T) {
	t.Parallel()
	e := newRESTEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/armory/agents", ""},
		{"GET", "/armory/agents/a1", ""},
		{"GET", "/armory/clouddrivers", ""},
		{"GET", "/armory/clouddrivers/cp-1", ""},
		{"GET", "/agents/kubernetes/accounts/main", ""},
		{"GET", "/agents/kubernetes/accounts/main/namespaces", ""},
		{"POST", "/armory/agent/assignments", `["main"]`},
		{"POST", "/armory/agent/a1/disconnect", `{}`},
		{"POST", "/armory/agent/a1/commands", `{"command": "{}"}`},
	} {
		e.want(t, c.method, c.path+"?pgae=2", c.body, http.StatusBadRequest, `unknown query parameter "pgae"; this endpoint takes none`)
	}
	e.want(t, "GET", "/cache/objects?colour=blue", "", http.StatusBadRequest,
		`unknown query parameter "colour"; allowed: account, kind, group, namespace, name, application, labelSelector, limit, continue`)
	e.want(t, "GET", "/cache/objects/main/ConfigMap/x?colour=blue", "", http.StatusBadRequest,
		`unknown query parameter "colour"; allowed: namespace, group, minResourceVersion, waitMs`)
	if code, _, body := e.call(t, "GET", "/armory/clouddrivers/cp-1", ""); code != http.StatusOK {
		t.Errorf("GET /armory/clouddrivers/cp-1: %d %s", code, body)
	}
}
