package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/credentials/credtest"
	"github.com/kubesvc/kubesvc/internal/testnet"
)

// A kubeconfig that does not load or validate is reported by its file and
// the kind of problem, never by its content: clientcmd's own messages
// quote anchors, map keys, kinds, names and values, and the agent's error
// reaches its log, the account's status and the control plane's database.
func TestRestConfigErrorsNeverQuoteTheKubeconfig(t *testing.T) {
	const sentinel = "SENTINEL-kube-7d3e"
	head := "apiVersion: v1\nkind: Config\n"
	valid := credtest.Kubeconfig("t")
	dir := t.TempDir()
	for _, c := range []struct{ name, content, context, mention string }{
		{"anchor", head + "users:\n- name: u\n  user:\n    token: *" + sentinel + "\n", "", "YAML syntax error"},
		{"map key", "{" + sentinel + ": x}: y\n", "", "YAML syntax error"},
		{"kind", "apiVersion: v1\nkind: " + sentinel + "\n", "", "apiVersion and kind must be v1 and Config"},
		{"tag", head + "users:\n- name: u\n  user:\n    token: !!" + sentinel + " x\n", "", "invalid kubeconfig"},
		{"json", `{"apiVersion": "v1", "current-context": ["` + sentinel + `"]}`, "", "wrong type"},
		{"current-context", strings.Replace(valid, "current-context: ctx1", "current-context: "+sentinel, 1), "", "current-context names a context that is not defined"},
		{"cluster name", strings.Replace(valid, "    cluster: c1\n    user", "    cluster: "+sentinel+"\n    user", 1), "", "names a cluster that is not defined"},
		{"proxy-url", strings.Replace(valid, "    server: https://127.0.0.1:6443", "    server: https://127.0.0.1:6443\n    proxy-url: \"http://u:"+sentinel+"@%zz\"", 1), "", "proxy-url is not a valid URL"},
		{"ca file", strings.Replace(valid, "    server: https://127.0.0.1:6443", "    server: https://127.0.0.1:6443\n    certificate-authority: /nonexistent/ca.crt", 1), "", "/nonexistent/ca.crt"},
		{"empty", "", "", "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".kubeconfig")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := restConfig(Account{Name: "acct", KubeconfigFile: path, Context: c.context}, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, sentinel) {
				t.Errorf("the error quotes the kubeconfig: %s", msg)
			}
			if !strings.Contains(msg, path) || !strings.Contains(msg, "acct") || !strings.Contains(msg, c.mention) {
				t.Errorf("error %q: want the account, the file %s and %q", msg, path, c.mention)
			}
			if c.mention != "/nonexistent/ca.crt" && !errors.Is(err, credentials.ErrInvalidKubeconfig) {
				t.Errorf("error %q does not wrap ErrInvalidKubeconfig", msg)
			}

			// The same contents sent by the control plane.
			if c.content == "" {
				return
			}
			_, err = restConfig(Account{Name: "acct", Kubeconfig: []byte(c.content), Context: c.context}, slog.New(slog.DiscardHandler))
			if err == nil || strings.Contains(err.Error(), sentinel) || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("kubeconfig contents: error %v, want one with %q and without the content", err, c.mention)
			}
		})
	}

	// A missing file is named; a valid one loads.
	missing := filepath.Join(dir, "missing")
	if _, err := restConfig(Account{Name: "acct", KubeconfigFile: missing}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), missing) ||
		!errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte(valid), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := restConfig(Account{Name: "acct", KubeconfigFile: ok}, slog.New(slog.DiscardHandler)); err != nil || cfg.Host != "https://127.0.0.1:6443" {
		t.Errorf("valid file: %v", err)
	}
}

// noProxy makes the account's client reach its API server directly, even
// with a proxy in the environment; otherwise client-go's default (the
// environment) applies.
func TestRestConfigNoProxy(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://api.example:6443\n" +
		"contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: t}\n"
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := restConfig(Account{Name: "a", KubeconfigFile: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Proxy != nil {
		t.Error("without noProxy the client's proxy is set; want client-go's default (the environment)")
	}
	cfg, err = restConfig(Account{Name: "a", KubeconfigFile: path, NoProxy: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example:6443/api", nil)
	if cfg.Proxy == nil {
		t.Fatal("noProxy: no proxy function, so the environment's proxy applies")
	}
	if u, err := cfg.Proxy(req); u != nil || err != nil {
		t.Errorf("noProxy: proxy %v (%v), want none", u, err)
	}
}

// An API server nobody listens at is a failure to connect, not to
// handshake.
func TestCertFingerprintNamesAFailedConnection(t *testing.T) {
	addr := testnet.Reserve(t)
	_, err := certFingerprint(context.Background(), &rest.Config{Host: "https://" + addr})
	if err == nil || !strings.HasPrefix(err.Error(), "connect to the API server "+addr) {
		t.Errorf("certFingerprint: %v", err)
	}
}
