package dynaccounts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/credentials/credtest"
	"github.com/kubesvc/kubesvc/internal/store"
)

const sentinel = "SENTINEL-dynaccounts-5b1e"

// kubeconfig is a valid kubeconfig whose user's token is sentinel.
var kubeconfig = credtest.Kubeconfig(sentinel)

// leakEnv is a manager on a SQLite store (its reconciler not running),
// with an encryption key, serving the REST API.
type leakEnv struct {
	dir string
	st  store.Store
	mgr *Manager
	url string
}

func newLeakEnv(t *testing.T) *leakEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "cp.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := serveManager(t, st, nil)
	e.dir = dir
	return e
}

// serveManager is a manager on st (its reconciler not running), with an
// encryption key, serving the REST API; agents are reached through cluster
// (nil: none).
func serveManager(t *testing.T, st store.Store, cluster Agents) *leakEnv {
	t.Helper()
	sealer, err := credentials.NewSealer(bytes.Repeat([]byte{7}, credentials.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	mgr := New(Config{Enabled: true, ReplicaID: "cp-1", Log: slog.New(slog.DiscardHandler)}, st, cluster,
		NewCredentials(&credentials.Resolver{Sealer: sealer}))
	mux := http.NewServeMux()
	mgr.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &leakEnv{st: st, mgr: mgr, url: srv.URL}
}

func (e *leakEnv) call(t *testing.T, method, path, body string) (int, string) {
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
	return resp.StatusCode, string(b)
}

// assertClean fails t if the sentinel (or the kubeconfig's base64) is in
// s.
func assertClean(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{sentinel, base64.StdEncoding.EncodeToString([]byte(kubeconfig))} {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds the kubeconfig in plain text: %.300s", what, s)
		}
	}
}

// assertStoreClean checks every row of kubesvc_accounts, the database
// files themselves and GET /armory/accounts.
func (e *leakEnv) assertStoreClean(t *testing.T) {
	t.Helper()
	rows, err := e.st.ListAccounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rows {
		assertClean(t, "row "+a.Name, fmt.Sprintf("%s|%s|%s|%s", a.Definition, a.KubeconfigRef, a.KubeconfigSealed, a.ErrorMessage))
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "cp.db*"))
	if len(files) == 0 {
		t.Fatal("no database file")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		assertClean(t, "database file "+filepath.Base(f), string(b))
	}
	code, body := e.call(t, "GET", "/armory/accounts", "")
	if code != http.StatusOK {
		t.Fatalf("GET /armory/accounts: %d %s", code, body)
	}
	assertClean(t, "GET /armory/accounts", body)
}

func str(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Kubeconfig contents in any field that is stored as it is
// (kubeconfigFile, kubeconfigAgent, an unknown field), whichever field is
// in effect, get a 400 naming the field, and nothing is stored: neither
// the database nor the API's answers ever hold the kubeconfig in plain
// text.
func TestPlainKubeconfigIsRefused(t *testing.T) {
	e := newLeakEnv(t)
	ref := str("encrypted:k8s!n:kubeconfigs!k:config")
	kc := str(kubeconfig)
	// A valid account to PUT and PATCH.
	if code, body := e.call(t, "POST", "/armory/accounts/dynamic", `{"name":"ok","kubeconfigFile":`+ref+`}`); code != http.StatusAccepted {
		t.Fatalf("POST of a valid account: %d %s", code, body)
	}
	okBefore, err := e.st.GetAccount(context.Background(), "ok")
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		method, path, body string
		mentions           []string
	}{
		{"POST", "/armory/accounts/dynamic", `{"name":"a1","kubeconfigAgent":` + kc + `}`,
			[]string{"[0].kubeconfigAgent", "holds kubeconfig contents"}},
		{"POST", "/armory/accounts/dynamic", `{"name":"a2","kubeconfigContents":` + ref + `,"kubeconfigFile":` + kc + `}`,
			[]string{"[0].kubeconfigFile", "holds kubeconfig contents"}},
		{"POST", "/armory/accounts/dynamic", `{"name":"a3","kubeconfigContents":` + ref + `,"kubeconfigAgent":` + kc + `}`,
			[]string{"[0].kubeconfigAgent", "holds kubeconfig contents"}},
		{"POST", "/armory/accounts/dynamic", `{"name":"a4","kubeConfigContents":` + kc + `}`,
			[]string{"[0].kubeConfigContents: unknown field", "did you mean kubeconfigContents?"}},
		{"POST", "/armory/accounts/dynamic", `{"name":"a5","kubeconfigContents":` + str(kubeconfig) + `,"kubeconfigAgent":` + kc + `}`,
			[]string{"[0].kubeconfigAgent"}},
		{"POST", "/armory/accounts/dynamic", `{"name":"a6","kubeconfigFile":` + ref + `,"extra":{"auth":[` + str(base64.StdEncoding.EncodeToString([]byte(kubeconfig))) + `]}}`,
			[]string{"[0].extra.auth[0]: unknown field"}},
		{"POST", "/armory/accounts/dynamic", `{"name":"a7","kubeconfigFile":` + ref + `,"cfg":{"apiVersion":"v1","kind":"Config","users":[{"name":"u","user":{"token":"` + sentinel + `"}}]}}`,
			[]string{"[0].cfg: unknown field"}},
		{"POST", "/armory/accounts/dynamic", `{"name":"a8","kubeconfigFile":` + ref + `,"context":` + kc + `}`,
			[]string{"[0].context"}},
		// A batch is refused whole.
		{"POST", "/armory/accounts/dynamic", `[{"name":"b1","kubeconfigFile":` + ref + `},{"name":"b2","kubeconfigAgent":` + kc + `}]`,
			[]string{"[1].kubeconfigAgent"}},
		{"POST", "/armory/accounts", `[{"name":"b1","kubeconfigFile":` + ref + `},{"name":"b3","kubeconfigFile":` + ref + `,"kubeconfigAgent":` + kc + `}]`,
			[]string{"[1].kubeconfigAgent"}},
		{"PUT", "/armory/accounts/dynamic", `[{"name":"ok","kubeconfigFile":"/k/ok"},{"name":"ok2","kubeConfigContents":` + kc + `}]`,
			[]string{"[1].kubeConfigContents", "did you mean kubeconfigContents?"}},
		{"PUT", "/armory/accounts/dynamic", `{"name":"ok","kubeconfigContents":` + ref + `,"kubeconfigFile":` + kc + `}`,
			[]string{"[0].kubeconfigFile"}},
		{"PATCH", "/armory/accounts", `[{"name":"ok","kubeconfigFile":` + ref + `,"kubeconfigAgent":` + kc + `}]`,
			[]string{"[0].kubeconfigAgent"}},
	} {
		code, body := e.call(t, c.method, c.path, c.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s %s %.80s: %d %s, want 400", c.method, c.path, c.body, code, body)
		}
		for _, m := range c.mentions {
			if !strings.Contains(body, m) {
				t.Errorf("%s %s %.80s: %s, want a mention of %q", c.method, c.path, c.body, body, m)
			}
		}
		assertClean(t, "the answer to "+c.method+" "+c.path, body)
	}
	rows, err := e.st.ListAccounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Errorf("refused requests stored accounts: %d rows", len(rows))
	}
	if okAfter, _ := e.st.GetAccount(context.Background(), "ok"); okAfter.Version != okBefore.Version {
		t.Errorf("refused requests changed account ok: %s -> %s", okBefore.Definition, okAfter.Definition)
	}

	// What is allowed still is: inline contents are sealed, free text and
	// Clouddriver's other fields are kept.
	good := `{"name":"g1","kubeconfigContents":` + kc + `,"description":"prod: us-east-1, team: platform",` +
		`"customResources":[{"kubernetesKind":"Foo.example.com","versioned":false}],"providerVersion":"V2"}`
	if code, body := e.call(t, "POST", "/armory/accounts/dynamic", good); code != http.StatusAccepted {
		t.Fatalf("POST of an account with inline contents: %d %s", code, body)
	}
	g1, err := e.st.GetAccount(context.Background(), "g1")
	if err != nil || g1.KubeconfigSealed == "" || !strings.Contains(string(g1.Definition), `"description":"prod: us-east-1, team: platform"`) ||
		!strings.Contains(string(g1.Definition), "customResources") {
		t.Errorf("g1: %v %s sealed %d bytes", err, g1.Definition, len(g1.KubeconfigSealed))
	}
	e.assertStoreClean(t)
}

// The manager's API for the Clouddriver features refuses the same, and an
// import, which records unusable credentials as FAILED instead, stores
// the definition without them.
func TestImportNeverStoresPlainKubeconfig(t *testing.T) {
	e := newLeakEnv(t)
	ctx := context.Background()
	ref := "encrypted:k8s!n:kubeconfigs!k:config"

	for _, raw := range []string{
		`{"name":"p1","kubeConfigContents":` + str(kubeconfig) + `}`,
		`{"name":"p2","kubeconfigFile":` + str(ref) + `,"nested":{"kubeconfig":` + str(kubeconfig) + `}}`,
	} {
		_, err := ParseDefinition([]byte(raw))
		if err == nil || !strings.Contains(err.Error(), "unknown field holding kubeconfig contents") {
			t.Errorf("ParseDefinition(%.60s): %v", raw, err)
		} else {
			assertClean(t, "ParseDefinition's error", err.Error())
		}
	}

	for i, d := range []Definition{
		{KubeconfigContents: ref, KubeconfigFile: kubeconfig},
		{KubeconfigContents: ref, KubeconfigAgent: kubeconfig},
		{KubeconfigAgent: kubeconfig},
		{KubeconfigFile: ref, Extra: map[string]any{"kubeConfigContents": kubeconfig}},
		{KubeconfigFile: ref, Extra: map[string]any{"x": []any{map[string]any{"y": kubeconfig}}}},
	} {
		d.Name = fmt.Sprintf("i%d", i)
		for what, err := range map[string]error{
			"CheckCredentials": e.mgr.CheckCredentials(ctx, d),
			"Update":           e.mgr.Update(ctx, d),
		} {
			if err == nil {
				t.Errorf("%s of %s: no error", what, d.Name)
			} else {
				assertClean(t, what+"'s error", err.Error())
			}
		}
		if _, err := e.mgr.Activate(ctx, d); err == nil {
			t.Errorf("Activate of %s: no error", d.Name)
		}
		a, err := e.mgr.Import(ctx, d)
		if err != nil {
			t.Fatalf("Import of %s: %v", d.Name, err)
		}
		if a.State != Failed || !strings.Contains(a.ErrorMessage, "kubeconfig contents") {
			t.Errorf("import %s: %s %q, want FAILED naming the problem", d.Name, a.State, a.ErrorMessage)
		}
		if !strings.Contains(string(a.Definition), `"name":"`+d.Name+`"`) {
			t.Errorf("import %s: definition %s", d.Name, a.Definition)
		}
	}
	e.assertStoreClean(t)
}
