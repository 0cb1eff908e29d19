package cdaccounts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/credentials/credtest"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
)

const sentinel = "SENTINEL-cdaccounts-93c2"

var leakKubeconfig = credtest.Kubeconfig(sentinel)

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// assertNoSentinel fails t if s holds the sentinel.
func assertNoSentinel(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, sentinel) {
		t.Errorf("%s holds the kubeconfig in plain text: %.300s", what, s)
	}
}

// tablesClean checks every body of Clouddriver's tables and every row of
// kubesvc_accounts.
func (e *env) tablesClean(t *testing.T) {
	t.Helper()
	for _, q := range []string{`SELECT body FROM accounts`, `SELECT body FROM accounts_history WHERE body IS NOT NULL`} {
		rows, err := e.raw.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var body string
			if err := rows.Scan(&body); err != nil {
				t.Fatal(err)
			}
			assertNoSentinel(t, q, body)
		}
		_ = rows.Close()
	}
	e.kubesvcClean(t)
}

func (e *env) kubesvcClean(t *testing.T) {
	t.Helper()
	accts, err := e.st.ListAccounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		assertNoSentinel(t, "kubesvc_accounts row "+a.Name, fmt.Sprintf("%s|%s|%s|%s", a.Definition, a.KubeconfigRef, a.KubeconfigSealed, a.ErrorMessage))
	}
}

// /credentials refuses kubeconfig content in any field of a definition
// with a Clouddriver-style 400 naming the field, before anything is
// written: Clouddriver's tables, kubesvc_accounts and the answers never
// hold it.
func TestInterceptorRefusesPlainKubeconfig(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.liquibase(t)
		srv := serveInterceptor(t, e, Config{})
		u := srv.URL + "/credentials"
		kc := jsonString(leakKubeconfig)
		ref := `"encrypted:k8s!n:kubeconfigs!k:config"`
		k1 := `{"type":"kubernetes","name":"k1","kubeconfigFile":` + ref + `}`
		if code, body := call(t, "POST", u, k1); code != http.StatusOK {
			t.Fatalf("POST: %d %s", code, body)
		}

		before := e.counts(t)
		for _, c := range []struct{ method, path, body, mention string }{
			{"POST", "", `{"type":"kubernetes","name":"c1","kubeconfigAgent":` + kc + `}`, "kubeconfigAgent: holds kubeconfig content"},
			{"POST", "", `{"type":"kubernetes","name":"c2","kubeconfigContents":` + ref + `,"kubeconfigFile":` + kc + `}`, "kubeconfigFile: holds kubeconfig content"},
			{"POST", "", `{"type":"kubernetes","name":"c3","kubeconfigContents":` + ref + `,"kubeconfigAgent":` + kc + `}`, "kubeconfigAgent: holds kubeconfig content"},
			{"POST", "", `{"type":"kubernetes","name":"c4","kubeConfigContents":` + kc + `}`, "body.kubeConfigContents: unknown field holding kubeconfig contents"},
			{"POST", "", `{"type":"kubernetes","name":"c4","kubeConfigContents":` + kc + `}`, "did you mean kubeconfigContents?"},
			{"POST", "", `{"type":"kubernetes","name":"c5","kubeconfigContents":` + kc + `}`, "kubeconfigContents: inline kubeconfig content would be stored in plain text"},
			{"PUT", "", `{"type":"kubernetes","name":"c6","kubeconfigFile":` + ref + `,"kubeconfigAgent":` + kc + `}`, "kubeconfigAgent"},
			{"PUT", "/k1", `{"type":"kubernetes","name":"k1","kubeconfigContents":` + ref + `,"kubeconfigFile":` + kc + `}`, "kubeconfigFile"},
			{"PUT", "/k1", `{"type":"kubernetes","name":"k1","kubeconfigFile":` + ref + `,"kube_config":` + kc + `}`, "body.kube_config: unknown field"},
			{"POST", "", `{"type":"aws","name":"aws1","kubeconfig":` + kc + `}`, "kubeconfig: holds kubeconfig content"},
			{"PUT", "", `{"type":"cloudfoundry","name":"cf1","settings":{"nested":[` + kc + `]}}`, "settings.nested[0]: holds kubeconfig content"},
		} {
			code, body := call(t, c.method, u+c.path, c.body)
			var ce cdError
			_ = json.Unmarshal([]byte(body), &ce)
			if code != http.StatusBadRequest || ce.Status != 400 || !strings.Contains(ce.Message, c.mention) {
				t.Errorf("%s %s %.70s: %d %s, want a 400 with %q", c.method, c.path, c.body, code, body, c.mention)
			}
			assertNoSentinel(t, "the answer to "+c.method+" "+c.path, body)
		}
		if after := e.counts(t); after != before {
			t.Errorf("refused requests changed the tables: %v -> %v", before, after)
		}
		// Other types without a kubeconfig are stored as before.
		if code, body := call(t, "POST", u, `{"type":"aws","name":"aws2","accountId":"1234","description":"prod: main"}`); code != http.StatusOK {
			t.Errorf("POST aws: %d %s", code, body)
		}
		for _, path := range []string{"/type/kubernetes", "/type/aws", "/k1/history"} {
			_, body := call(t, "GET", u+path, "")
			assertNoSentinel(t, "GET /credentials"+path, body)
		}
		e.tablesClean(t)
	})
}

// Rows Clouddriver wrote with kubeconfig content where it does not belong
// never bring it into kubesvc_accounts, nor into the log: a row with an
// unknown field holding one is skipped; one with content in
// kubeconfigFile or kubeconfigAgent is imported FAILED without it.
func TestScanNeverImportsPlainKubeconfig(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.liquibase(t)
		at := ms(time.Now())
		kc := jsonString(leakKubeconfig)
		ref := `"encrypted:k8s!n:kubeconfigs!k:config"`
		for name, body := range map[string]string{
			"prod-file":  `{"type":"kubernetes","name":"prod-file","kubeconfigContents":` + ref + `,"kubeconfigFile":` + kc + `}`,
			"prod-agent": `{"type":"kubernetes","name":"prod-agent","kubeconfigAgent":` + kc + `}`,
			"prod-miscap": `{"type":"kubernetes","name":"prod-miscap","kubeconfigFile":` + ref +
				`,"kubeConfigContents":` + kc + `}`,
		} {
			e.cdCreate(t, name, "kubernetes", body, at)
		}
		var mu sync.Mutex
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil))
		svc := newScanService(t, e, Config{NamePatterns: []string{"^prod-"}, ScanBatchSize: 10, Log: log})
		if err := svc.scan.scan(ctx); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"prod-file": dynaccounts.Failed, "prod-agent": dynaccounts.Failed, "prod-miscap": ""} {
			if s := e.state(t, name); s != want {
				t.Errorf("%s: state %q, want %q", name, s, want)
			}
		}
		e.kubesvcClean(t)
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(logs.String(), "kubeConfigContents: unknown field holding kubeconfig contents") {
			t.Errorf("the skipped row is not logged: %s", logs.String())
		}
		assertNoSentinel(t, "the log", logs.String())
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
