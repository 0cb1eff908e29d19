package controlplane

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
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
	st := storetest.SQLite(t)
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

// A continue token is good for the next page of its own list only: with
// other filters it is a 400 naming continue, not an empty page. A token of
// the earlier format (no filters recorded, issued by a replica not yet
// upgraded) is taken unchecked. limit=0 lists everything.
func TestContinueTokenIsBoundToItsFilters(t *testing.T) {
	t.Parallel()
	e := newRESTEnv(t)
	e.seed(t, "10", "a/x1", "a/x2", "a/x3", "b/y1")
	list := func(query string) (int, string, []cachedObject, string) {
		t.Helper()
		code, h, body := e.call(t, "GET", "/cache/objects?"+query, "")
		var objs []cachedObject
		if code == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &objs); err != nil {
				t.Fatalf("?%s: %v", query, err)
			}
		}
		return code, h.Get(continueHeader), objs, body
	}
	code, tok, objs, _ := list("account=main&namespace=a&limit=1")
	if code != http.StatusOK || len(objs) != 1 || tok == "" {
		t.Fatalf("first page: %d %d objects, token %q", code, len(objs), tok)
	}
	// The same filters (an empty selector is none; kind in another case, the selector's terms in
	// another order) with another limit go on.
	if code, _, objs, body := list("account=main&namespace=a&labelSelector=&limit=5&continue=" + tok); code != http.StatusOK || len(objs) != 2 {
		t.Errorf("next page: %d %s", code, body)
	}
	code, tok2, _, _ := list("account=main&kind=ConfigMap&labelSelector=b!=1,a!=1&limit=1")
	if code, _, objs, body := list("account=main&kind=configmap&labelSelector=a!=1,b!=1&continue=" + tok2); code != http.StatusOK || len(objs) != 3 {
		t.Errorf("next page, same selector: %d %s", code, body)
	}
	for _, other := range []string{"account=main&namespace=b", "account=main", "account=main&namespace=a&name=x2", "account=main&namespace=a&labelSelector=a=1", "account=main&namespace=a&group="} {
		e.want(t, "GET", "/cache/objects?"+other+"&continue="+tok, "", http.StatusBadRequest, "continue: the token is for a list with other filters")
	}
	old := base64.RawURLEncoding.EncodeToString([]byte(`["main","ConfigMap","a","x1",""]`))
	if code, _, objs, body := list("account=main&namespace=a&continue=" + old); code != http.StatusOK || len(objs) != 2 {
		t.Errorf("earlier token: %d %s, want the 2 objects after a/x1", code, body)
	}
	e.want(t, "GET", "/cache/objects?continue=bm9wZQ", "", http.StatusBadRequest, "continue: not a token of this API")

	if code, tok, objs, _ := list("limit=0"); code != http.StatusOK || len(objs) != 4 || tok != "" {
		t.Errorf("limit=0: %d, %d objects, token %q; want all 4 and no token", code, len(objs), tok)
	}
}

// Freeing the assignments of accounts the cluster does not know is a 400
// naming them, and frees nothing.
func TestAssignmentsOfUnknownAccountsAreRefused(t *testing.T) {
	t.Parallel()
	e := newRESTEnv(t)
	ctx := context.Background()
	sess := store.AgentSession{AgentID: "ag1", SessionID: "s1", ReplicaID: "cp-1", ConnectedAt: time.Now()}
	if _, _, err := e.st.PutAgentSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetAgentAccounts(ctx, "ag1", []string{"served"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateAccount(ctx, store.Account{Name: "dyn", State: "INACTIVE", Definition: []byte(`{"name":"dyn"}`)}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.st.ClaimAssignments(ctx, sess, []string{"served"}); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	assigned := func() int {
		t.Helper()
		as, err := e.st.Assignments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(as)
	}
	e.want(t, "POST", "/armory/agent/assignments", `["ghost"]`, http.StatusBadRequest, "body: unknown accounts (nothing was changed): ghost;")
	e.want(t, "POST", "/armory/agent/assignments", `["served", "ghost", "dyn", "ghost2"]`, http.StatusBadRequest, "unknown accounts (nothing was changed): ghost, ghost2;")
	if n := assigned(); n != 1 {
		t.Errorf("a refused request freed assignments: %d left, want 1", n)
	}
	if code, _, body := e.call(t, "POST", "/armory/agent/assignments", `["served", "dyn"]`); code != http.StatusOK {
		t.Errorf("POST of known accounts: %d %s", code, body)
	}
	if n := assigned(); n != 0 {
		t.Errorf("the assignment of served was not freed: %d left", n)
	}
}

// Key parameters no cached object can have (control characters, non-ASCII,
// over 253 bytes) are a 400 naming the parameter.
func TestKeyParametersMustBePrintableASCII(t *testing.T) {
	e := newRESTEnv(t)
	for path, says := range map[string]string{
		"/cache/objects/acct/ConfigMap/a%01b":                       "name:",
		"/cache/objects/acct/ConfigMap/a%7Fb":                       "name:",
		"/cache/objects/acct/ConfigMap/%C3%A9":                      "name:",
		"/cache/objects/acct/ConfigMap/x?namespace=a%0Ab":           "namespace:",
		"/cache/objects?account=acct&kind=Config%09Map":             "kind:",
		"/cache/objects/acct/ConfigMap/" + strings.Repeat("n", 254): "longer than 253 bytes",
	} {
		e.want(t, "GET", path, "", http.StatusBadRequest, says)
	}
}

// An agent held by another replica is listed with the version it sent
// that replica, read from its session row.
func TestAgentsOfOtherReplicasShowTheirVersion(t *testing.T) {
	e := newRESTEnv(t)
	ctx := context.Background()
	sess := store.AgentSession{AgentID: "a1", SessionID: "a1-1", ReplicaID: "cp-2", Version: "1.4.0", ConnectedAt: time.Now()}
	if _, _, err := e.st.PutAgentSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.s.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/armory/agents", "/armory/agents/a1"} {
		if code, _, body := e.call(t, "GET", path, ""); code != http.StatusOK ||
			!strings.Contains(body, `"clouddriverId":"cp-2"`) || !strings.Contains(body, `"version":"1.4.0"`) {
			t.Errorf("GET %s on cp-1: %d %s, want a1 on cp-2 of version 1.4.0", path, code, body)
		}
	}
}

// Every REST request is counted and timed by the route that served it.
func TestHTTPMetricsByRoute(t *testing.T) {
	e := newRESTEnv(t)
	e.call(t, "GET", "/health", "")
	e.call(t, "GET", "/manifests/main/prod/deployment%20web", "")
	e.call(t, "GET", "/no/such/path", "")
	e.call(t, "DELETE", "/health", "")
	// The mux's redirect of an unclean path: its target is no label.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := noFollow.Get(e.url + "/cache//objects/a-unique-path"); err != nil || resp.StatusCode/100 != 3 {
		t.Fatalf("an unclean path: %v %v, want the mux's redirect", resp, err)
	} else {
		resp.Body.Close()
	}
	// A handler that panics is a 500, not a client gone (499).
	func() {
		defer func() { _ = recover() }()
		e.s.instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })).
			ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom", nil))
	}()
	_, _, body := e.call(t, "GET", "/metrics", "")
	if strings.Contains(body, "a-unique-path") {
		t.Errorf("a redirect's target is a route label:\n%s", body)
	}
	for _, want := range []string{
		`kubesvc_controlplane_http_requests_total{code="200",route="GET /health"} 1`,
		`kubesvc_controlplane_http_requests_total{code="404",route="GET /manifests/{account}/{location}/{name}"} 1`,
		`kubesvc_controlplane_http_requests_total{code="404",route="unmatched"} 1`,
		`kubesvc_controlplane_http_requests_total{code="405",route="method_not_allowed"} 1`,
		`kubesvc_controlplane_http_request_duration_seconds_count{route="GET /health"} 1`,
		`kubesvc_controlplane_http_requests_total{code="307",route="redirect"} 1`,
		`kubesvc_controlplane_http_requests_total{code="500",route="unmatched"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepMetric(body, "http_requests_total"))
		}
	}
}

func grepMetric(body, name string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, name) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The store's shared transactions are counted in /metrics: sessions
// writing at once on SQLite share commits.
func TestGroupCommitMetrics(t *testing.T) {
	e := newRESTEnv(t)
	g := e.st.(groupCommitter)
	k := store.StreamKey{Account: "a", Resource: store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	deadline := time.Now().Add(time.Minute)
	for round := 0; ; round++ {
		if txs, _ := g.GroupCommits(); txs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("16 writers at once never shared a transaction")
		}
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				kw := k
				kw.Account = fmt.Sprint("a", w)
				o := &store.Object{ObjectKey: store.ObjectKey{Account: kw.Account, Kind: "ConfigMap", Namespace: "ns", Name: "x"}, ResourceVersion: fmt.Sprint(round + 1), JSON: []byte(`{}`)}
				if err := e.st.ApplyChanges(context.Background(), []store.Change{{Type: store.Upserted, Stream: kw, Object: o}}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	_, _, body := e.call(t, "GET", "/metrics", "")
	txs, calls := g.GroupCommits()
	for _, want := range []string{
		fmt.Sprintf("kubesvc_store_group_commits_total %d\n", txs),
		fmt.Sprintf("kubesvc_store_group_commit_batches_total %d\n", calls),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepMetric(body, "kubesvc_store_group"))
		}
	}
	if calls < 2*txs {
		t.Errorf("%d batches in %d shared transactions: fewer than two each", calls, txs)
	}
}
