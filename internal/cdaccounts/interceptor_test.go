package cdaccounts

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kubesvc/kubesvc/internal/dynaccounts"
)

func serveInterceptor(t *testing.T, e *env, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Interceptor, cfg.ReplicaID = true, "cp-1"
	svc, err := New(cfg, e.db, e.st, e.mgr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-SPINNAKER-USER", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type cdRow struct {
	typ, body, by     string
	created, modified int64
}

func (e *env) row(t *testing.T, id string) (cdRow, bool) {
	t.Helper()
	var r cdRow
	err := e.raw.QueryRow(e.q(`SELECT type, body, created_at, last_modified_at, last_modified_by FROM accounts WHERE id = ?`), id).
		Scan(&r.typ, &r.body, &r.created, &r.modified, &r.by)
	if err == sql.ErrNoRows {
		return cdRow{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

// history returns "version:type:deleted" of each revision, oldest first,
// and checks deletions carry no body.
func (e *env) history(t *testing.T, id string) []string {
	t.Helper()
	rows, err := e.raw.Query(e.q(`SELECT version, type, body, CASE WHEN is_deleted THEN 1 ELSE 0 END FROM accounts_history WHERE id = ? ORDER BY version`), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v, deleted int
		var typ, body sql.NullString
		if err := rows.Scan(&v, &typ, &body, &deleted); err != nil {
			t.Fatal(err)
		}
		if (deleted == 1) == body.Valid {
			t.Errorf("%s v%d: deleted %d with body %v", id, v, deleted, body.Valid)
		}
		out = append(out, strings.Join([]string{string(rune('0' + v)), typ.String, map[int]string{0: "live", 1: "deleted"}[deleted]}, ":"))
	}
	return out
}

func (e *env) counts(t *testing.T) [3]int {
	var c [3]int
	for i, table := range []string{"accounts", "accounts_history", "kubesvc_accounts"} {
		if err := e.raw.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&c[i]); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Each /credentials call writes Clouddriver's rows as Clouddriver does and
// leaves the documented account state; malformed bodies get 4xx and change
// nothing.
func TestInterceptor(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.liquibase(t)
		srv := serveInterceptor(t, e, Config{})
		u := srv.URL + "/credentials"

		k1 := `{"type":"kubernetes","name":"k1","kubeconfigFile":"encryptedFile:k8s!n:kubeconfigs!k:k1!ns:spinnaker","namespaces":["a"],"permissions":{"WRITE":["ops"]}}`
		code, body := call(t, "POST", u, k1)
		if code != http.StatusOK || !strings.Contains(body, `"name":"k1"`) {
			t.Fatalf("POST: %d %s", code, body)
		}
		r, ok := e.row(t, "k1")
		var stored map[string]any
		_ = json.Unmarshal([]byte(r.body), &stored)
		if !ok || r.typ != "kubernetes" || r.created == 0 || r.created != r.modified || r.by != "alice" ||
			stored["type"] != "kubernetes" || stored["kubeconfigFile"] != "encryptedFile:k8s!n:kubeconfigs!k:k1!ns:spinnaker" {
			t.Errorf("accounts row after POST: %+v", r)
		}
		if h := e.history(t, "k1"); strings.Join(h, ",") != "1:kubernetes:live" {
			t.Errorf("history after POST: %v", h)
		}
		if s := e.state(t, "k1"); s != dynaccounts.ToMigrate {
			t.Errorf("state after POST: %q, want TO_MIGRATE (activated)", s)
		}

		before := e.counts(t)
		for _, c := range []struct{ method, path, body, mention string }{
			{"POST", "", k1, "Cannot create an account which already exists (name: k1)"},
			{"POST", "", `{not json`, "JSON parse error"},
			{"POST", "", `[]`, "JSON parse error: body: expected object, got array"},
			{"POST", "", `{"name":"x"}`, "missing type id property 'type'"},
			{"POST", "", `{"type":"kubernetes"}`, "no name"},
			{"POST", "", `{"type":"kubernetes","name":"bad name"}`, "without spaces"},
			{"POST", "", `{"type":"kubernetes","name":"x","namespaces":"a"}`, "body.namespaces: expected array, got string"},
			{"POST", "", `{"type":"kubernetes","name":"x","kubeconfigFile":"encryptedFile:k8s!k:config"}`, "kubeconfigFile"},
			{"POST", "", `{"type":"kubernetes","name":"x","kubeconfigContents":"apiVersion: v1\nkind: Config\n"}`, "plain text"},
			{"PUT", "/k1", `{"type":"kubernetes","name":"k2"}`, "Mismatched account names. URI value: k1. Request body value: k2."},
			{"PUT", "/ghost", `{"type":"kubernetes","name":"ghost","kubeconfigFile":"/k"}`, "Cannot update an account which does not exist (name: ghost)"},
			{"PUT", "", `{"type":"kubernetes","name":"k1","namespaces":{}}`, "namespaces"},
			{"GET", "/type/kubernetes?limit=ten", ``, "ten"},
		} {
			code, body := call(t, c.method, u+c.path, c.body)
			var e cdError
			_ = json.Unmarshal([]byte(body), &e)
			if code != http.StatusBadRequest || !strings.Contains(e.Message, c.mention) || e.Status != 400 || e.Error != "Bad Request" || e.Timestamp == 0 {
				t.Errorf("%s %s %s: %d %s, want a Clouddriver-style 400 with %q", c.method, c.path, c.body, code, body, c.mention)
			}
		}
		if after := e.counts(t); after != before {
			t.Errorf("rejected requests changed the tables: %v -> %v", before, after)
		}

		// PUT /credentials/{name} updates, keeps created_at, and pushes the
		// change to the agent of an ACTIVE account.
		e.setState(t, "k1", dynaccounts.Active)
		k1b := strings.Replace(k1, `["a"]`, `["a","b"]`, 1)
		if code, body := call(t, "PUT", u+"/k1", k1b); code != http.StatusOK {
			t.Fatalf("PUT: %d %s", code, body)
		}
		r2, _ := e.row(t, "k1")
		if r2.created != r.created || r2.modified < r.modified || !strings.Contains(r2.body, `"b"`) {
			t.Errorf("row after PUT: %+v (was %+v)", r2, r)
		}
		a, _ := e.st.GetAccount(ctx, "k1")
		if a.State != dynaccounts.ToMigrate || !strings.Contains(string(a.Definition), `"b"`) {
			t.Errorf("account after PUT: %s %s", a.State, a.Definition)
		}
		// PUT /credentials creates or updates (Clouddriver 1.29+).
		if code, body := call(t, "PUT", u, `{"@type":"kubernetes","name":"k2","kubeconfigFile":"/k/k2"}`); code != http.StatusOK || !strings.Contains(body, `"type":"kubernetes"`) {
			t.Fatalf("PUT (save) of a new account: %d %s", code, body)
		}
		if h := e.history(t, "k2"); strings.Join(h, ",") != "1:kubernetes:live" || e.state(t, "k2") != dynaccounts.ToMigrate {
			t.Errorf("k2: history %v, state %s", h, e.state(t, "k2"))
		}
		// Other types are stored as Clouddriver would, and left to it.
		if code, body := call(t, "POST", u, `{"type":"aws","name":"aws1","accountId":"1234"}`); code != http.StatusOK {
			t.Fatalf("POST aws: %d %s", code, body)
		}
		if r, ok := e.row(t, "aws1"); !ok || r.typ != "aws" || e.state(t, "aws1") != "" {
			t.Errorf("aws1: row %+v %v, state %q", r, ok, e.state(t, "aws1"))
		}

		var list []map[string]any
		_, body = call(t, "GET", u+"/type/kubernetes", "")
		if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 || list[0]["name"] != "k1" {
			t.Errorf("GET /credentials/type/kubernetes: %s", body)
		}
		_, body = call(t, "GET", u+"/type/kubernetes?limit=1&startingAccountName=k2", "")
		if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 1 || list[0]["name"] != "k2" {
			t.Errorf("GET /credentials/type/kubernetes?limit=1&startingAccountName=k2: %s", body)
		}

		// DELETE: history marked deleted, row gone, account deleted.
		if code, body := call(t, "DELETE", u+"/k1", ""); code != http.StatusOK {
			t.Fatalf("DELETE: %d %s", code, body)
		}
		if _, ok := e.row(t, "k1"); ok {
			t.Error("k1 still in accounts after DELETE")
		}
		if h := e.history(t, "k1"); strings.Join(h, ",") != "1:kubernetes:live,2:kubernetes:live,3::deleted" {
			t.Errorf("history after DELETE: %v", h)
		}
		if s := e.state(t, "k1"); s != dynaccounts.Deleting {
			t.Errorf("state after DELETE: %q, want DELETING", s)
		}
		_, body = call(t, "GET", u+"/k1/history", "")
		var revs []struct{ Version int }
		if err := json.Unmarshal([]byte(body), &revs); err != nil || len(revs) != 3 || revs[0].Version != 3 {
			t.Errorf("GET /credentials/k1/history: %s", body)
		}
		if code, body := call(t, "DELETE", u+"/ghost", ""); code != http.StatusNotFound || !strings.Contains(body, "ghost") {
			t.Errorf("DELETE of an unknown account: %d %s", code, body)
		}
		if code, _ := call(t, "GET", u, ""); code != http.StatusNotFound {
			t.Errorf("GET /credentials without a Clouddriver URL: %d, want 404", code)
		}
	})
}

// With a Clouddriver URL, other account types and the rest of the API go
// to Clouddriver, body intact; Kubernetes accounts stay here.
func TestInterceptorProxy(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var mu sync.Mutex
		var seen []string
		cd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path+" "+string(b))
			mu.Unlock()
			w.WriteHeader(http.StatusTeapot)
		}))
		t.Cleanup(cd.Close)
		srv := serveInterceptor(t, e, Config{ClouddriverURL: cd.URL})
		u := srv.URL + "/credentials"
		aws := `{"type":"aws","name":"aws1"}`
		for _, c := range [][3]string{{"POST", "", aws}, {"GET", "", ""}, {"GET", "/type/aws", ""}, {"DELETE", "/aws-unknown", ""}} {
			if code, _ := call(t, c[0], u+c[1], c[2]); code != http.StatusTeapot {
				t.Errorf("%s %s: %d, want Clouddriver's answer", c[0], c[1], code)
			}
		}
		if code, body := call(t, "POST", u, `{"type":"kubernetes","name":"k","kubeconfigFile":"/k"}`); code != http.StatusOK {
			t.Errorf("POST kubernetes: %d %s", code, body)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 4 || seen[0] != "POST /credentials "+aws {
			t.Errorf("Clouddriver saw %q", seen)
		}
		if _, ok := e.row(t, "aws1"); ok {
			t.Error("a proxied account was stored here too")
		}
	})
}

// Without Clouddriver's tables the interceptor creates them with its
// schema, once.
func TestEnsureTables(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i, want := range []bool{true, false} {
			created, err := e.db.EnsureTables(ctx)
			if err != nil || created != want {
				t.Fatalf("EnsureTables #%d: %v %v, want %v", i, created, err, want)
			}
		}
		// Clouddriver's own writes work on them.
		e.cdCreate(t, "x", "kubernetes", `{"type":"kubernetes","name":"x"}`, 1)
		e.cdDelete(t, "x", 2)
		if h := e.history(t, "x"); strings.Join(h, ",") != "1:kubernetes:live,2::deleted" {
			t.Errorf("history: %v", h)
		}
	})
}

// A Kubernetes account being deleted is not saved again through
// /credentials: 409, and Clouddriver's table is left as it was.
func TestInterceptorLeavesADeletingAccountAlone(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.liquibase(t)
		srv := serveInterceptor(t, e, Config{})
		u := srv.URL + "/credentials"
		k1 := `{"type":"kubernetes","name":"k1","kubeconfigFile":"encryptedFile:k8s!n:kubeconfigs!k:k1!ns:spinnaker"}`
		if code, body := call(t, "POST", u, k1); code != http.StatusOK {
			t.Fatalf("POST: %d %s", code, body)
		}
		a, err := e.st.GetAccount(ctx, "k1")
		if err != nil {
			t.Fatal(err)
		}
		a.State, a.Owner = dynaccounts.Deleting, ""
		if _, err := e.st.UpdateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		before, _ := e.row(t, "k1")
		history := e.history(t, "k1")
		changed := `{"type":"kubernetes","name":"k1","kubeconfigFile":"encryptedFile:k8s!n:kubeconfigs!k:CHANGED!ns:spinnaker"}`
		for _, path := range []string{"/k1", ""} {
			if code, body := call(t, "PUT", u+path, changed); code != http.StatusConflict || !strings.Contains(body, "being deleted") {
				t.Errorf("PUT %s on a deleting account: %d %s, want 409", path, code, body)
			}
		}
		if after, _ := e.row(t, "k1"); after != before {
			t.Errorf("accounts row changed: %+v -> %+v", before, after)
		}
		if h := e.history(t, "k1"); strings.Join(h, ",") != strings.Join(history, ",") {
			t.Errorf("history changed: %v -> %v", history, h)
		}
	})
}
