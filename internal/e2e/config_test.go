package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/config"
	"github.com/kubesvc/kubesvc/internal/agentapp"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func agentYAML(target string, healthPort string, accounts map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "agent:\n  id: reloading-agent\nclouddriver:\n  grpc: %s\n  insecure: true\nserver:\n  host: 127.0.0.1\n  port: %s\nkubernetes:\n  accounts:\n", target, healthPort)
	for name, kubeconfig := range accounts {
		fmt.Fprintf(&b, "  - name: %s\n    kubeconfigFile: %s\n    kinds: [namespace]\n", name, kubeconfig)
	}
	return b.String()
}

// writeAtomically replaces the file the way a ConfigMap update or an editor
// does: write a temporary file, rename it over the old one.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Editing the agent's configuration file adds and removes accounts live,
// without a restart; the control plane's cache follows.
func TestConfigFileEditAddsAndRemovesAccountsLive(t *testing.T) {
	t.Parallel()
	c1 := testenv.StartForTest(t, testenv.Options{Name: "reload-1"})
	c2 := testenv.StartForTest(t, testenv.Options{Name: "reload-2"})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	_, port, _ := strings.Cut(freeAddr(t), ":")
	path := runAgentApp(t, agentYAML(cp.grpc, port, map[string]string{"first": c1.KubeconfigPath}))
	present(t, cp, q("account", "first", "name", "default"), "/default")

	writeAtomically(t, path, agentYAML(cp.grpc, port, map[string]string{"first": c1.KubeconfigPath, "second": c2.KubeconfigPath}))
	present(t, cp, q("account", "second", "name", "default"), "/default")

	writeAtomically(t, path, agentYAML(cp.grpc, port, map[string]string{"second": c2.KubeconfigPath}))
	present(t, cp, q("account", "first"))
	eventually(t, wait, func() string {
		if code, _, _ := getJSON(cp.http, "/agents/kubernetes/accounts/first", nil, nil); code != 404 {
			return fmt.Sprintf("removed account still served: %d", code)
		}
		return ""
	})
	present(t, cp, q("account", "second", "name", "default"), "/default")
}

func TestUnknownConfigKeyIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "armory-agent.yml")
	writeAtomically(t, path, "clouddriver:\n  grpc: localhost:9091\nkubernetes:\n  accounts:\n  - name: a\n    kubeconfigFile: /x\n    kindz: [pod]\n")
	err := agentapp.Run(context.Background(), []config.Source{{Path: path}}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), `kubernetes.accounts[0].kindz`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("want an error naming the key and the file, got %v", err)
	}
}

// An account's permissions in the agent's file reach the account API,
// and an edit of them alone takes effect live.
func TestAccountPermissionsFromTheAgentFile(t *testing.T) {
	t.Parallel()
	c := testenv.StartForTest(t, testenv.Options{Name: "perms"})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	_, port, _ := strings.Cut(freeAddr(t), ":")
	yaml := func(perms string) string {
		return fmt.Sprintf("clouddriver: {grpc: %s, insecure: true}\nserver: {host: 127.0.0.1, port: %s}\nkubernetes:\n  accounts:\n  - name: guarded\n    kubeconfigFile: %s\n    kinds: [namespace]\n    permissions: %s\n",
			cp.grpc, port, c.KubeconfigPath, perms)
	}
	path := runAgentApp(t, yaml("[{READ: [dev, ops]}, {WRITE: [ops]}]"))
	permissions := func(want string) {
		t.Helper()
		eventually(t, wait, func() string {
			var acct struct {
				Permissions map[string][]string
				Definition  struct{ Permissions map[string][]string }
			}
			code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/guarded", nil, &acct)
			if err != nil || code != 200 {
				return fmt.Sprintf("GET account: %d %s %v", code, body, err)
			}
			got := fmt.Sprint(acct.Permissions)
			if got != want || fmt.Sprint(acct.Definition.Permissions) != want {
				return fmt.Sprintf("permissions %s, definition.permissions %v; want %s", got, acct.Definition.Permissions, want)
			}
			return ""
		})
	}
	permissions("map[READ:[dev ops] WRITE:[ops]]")
	// An edit of the permissions alone describes the account anew without
	// reconnecting or listing its streams again.
	present(t, cp, q("account", "guarded", "kind", "Namespace", "name", "default"), "/default")
	// The objects listed may be cached before the agent counts the list
	// done; it reports WATCHING after.
	cp.watching(t, "guarded")
	agentHTTP := "http://127.0.0.1:" + port
	relists := metricValue(t, agentHTTP, "kubesvc_relists_total")
	if relists < 1 {
		t.Fatalf("kubesvc_relists_total = %v before the edit, want the first list counted", relists)
	}
	writeAtomically(t, path, yaml("{READ: [everyone]}"))
	permissions("map[READ:[everyone]]")
	if after := metricValue(t, agentHTTP, "kubesvc_relists_total"); after != relists {
		t.Errorf("kubesvc_relists_total went from %v to %v: a permissions edit relisted the account", relists, after)
	}
}

// prometheus.enabled serves the metrics on prometheus.port, at /metrics and
// /prometheus_metrics, with the documented names; the health port serves
// them too.
func TestAgentPrometheusEndpoint(t *testing.T) {
	t.Parallel()
	c := testenv.StartForTest(t, testenv.Options{Name: "prom"})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	_, healthPort, _ := strings.Cut(freeAddr(t), ":")
	_, promPort, _ := strings.Cut(freeAddr(t), ":")
	_, pprofPort, _ := strings.Cut(freeAddr(t), ":")
	runAgentApp(t, fmt.Sprintf("clouddriver: {grpc: %s, insecure: true}\nserver: {host: 127.0.0.1, port: %s}\nprometheus: {enabled: true, port: %s}\npprof: {enabled: true, port: %s}\nkubernetes:\n  accounts:\n  - name: metered\n    kubeconfigFile: %s\n    kinds: [namespace, configmap]\n",
		cp.grpc, healthPort, promPort, pprofPort, c.KubeconfigPath))
	present(t, cp, q("account", "metered", "kind", "Namespace", "name", "default"), "/default")
	for _, u := range []string{
		"http://127.0.0.1:" + promPort + "/prometheus_metrics", "http://127.0.0.1:" + promPort + "/metrics",
		"http://127.0.0.1:" + healthPort + "/prometheus_metrics",
	} {
		eventually(t, wait, func() string {
			resp, err := http.Get(u)
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			for _, want := range []string{"kubesvc_resource_agent_total 2\n", "kubesvc_connection_count 1\n", "kubesvc_events_sent_total ",
				`kubesvc_agent_accounts{state="WATCHING"} 1` + "\n", `kubesvc_agent_accounts{state="ERROR"} 0` + "\n"} {
				if !strings.Contains(string(body), want) {
					return fmt.Sprintf("%s: no %q in\n%s", u, want, body)
				}
			}
			return ""
		})
	}
	// /health counts the accounts by state.
	eventually(t, wait, func() string {
		var h struct {
			Status    string
			Connected bool
			Accounts  map[string]int
		}
		if code, body, err := getJSON("http://127.0.0.1:"+healthPort, "/health", nil, &h); err != nil || code != 200 || h.Status != "UP" || !h.Connected || h.Accounts["WATCHING"] != 1 {
			return fmt.Sprintf("/health: %d %s %v", code, body, err)
		}
		return ""
	})
	// pprof.enabled serves Go's profiles on pprof.port.
	resp, err := http.Get("http://127.0.0.1:" + pprofPort + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Errorf("pprof goroutine profile: %d %.200s", resp.StatusCode, body)
	}
}

// clouddriver.auth adds a bearer token to the agent's stream, static or
// printed by a command, for a proxy in front of the control plane.
func TestAgentBearerToken(t *testing.T) {
	t.Parallel()
	c := testenv.StartForTest(t, testenv.Options{Name: "token"})
	var mu sync.Mutex
	seen := map[string]bool{} // authorization values of the agents' streams
	record := grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		mu.Lock()
		for _, v := range md.Get("authorization") {
			seen[v] = true
		}
		mu.Unlock()
		return h(srv, ss)
	})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db"), grpcOpts: []grpc.ServerOption{record}})
	cmd := filepath.Join(t.TempDir(), "token.sh")
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\necho '{\"token\": \"from-command\"}'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"auth: {token: static-token}", "auth: {tokenCommand: {command: " + cmd + "}}"} {
		_, port, _ := strings.Cut(freeAddr(t), ":")
		runAgentApp(t, fmt.Sprintf("clouddriver: {grpc: %s, insecure: true, %s}\nserver: {host: 127.0.0.1, port: %s}\nkubernetes:\n  accounts:\n  - name: a-%s\n    kubeconfigFile: %s\n    kinds: [namespace]\n",
			cp.grpc, auth, port, port, c.KubeconfigPath))
	}
	eventually(t, wait, func() string {
		mu.Lock()
		defer mu.Unlock()
		if !seen["Bearer static-token"] || !seen["Bearer from-command"] {
			return fmt.Sprintf("authorization seen: %v", seen)
		}
		return ""
	})
}

// A token the control plane (or a proxy in front of it) refuses is not sent
// again: the agent runs its token command for a new one on the next
// attempt, although refreshIntervalSeconds (0) would keep it forever.
func TestAgentRefusedTokenIsRefreshed(t *testing.T) {
	t.Parallel()
	c := testenv.StartForTest(t, testenv.Options{Name: "token-refused"})
	var mu sync.Mutex
	var seen []string
	refuse := grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		auth := strings.Join(md.Get("authorization"), ",")
		mu.Lock()
		seen = append(seen, auth)
		mu.Unlock()
		if auth != "Bearer token-2" {
			return status.Error(codes.Unauthenticated, "token expired")
		}
		return h(srv, ss)
	})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db"), grpcOpts: []grpc.ServerOption{refuse}})
	dir := t.TempDir()
	cmd := filepath.Join(dir, "token.sh")
	// token-1, then token-2, ...: one more each run.
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\necho x >> "+dir+"/runs\nprintf 'token-%s' $(wc -l < "+dir+"/runs)\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(freeAddr(t), ":")
	runAgentApp(t, fmt.Sprintf("clouddriver:\n  grpc: %s\n  insecure: true\n  backoff: {baseDelay: 100000000, maxDelay: 500000000}\n  auth: {tokenCommand: {command: %s, format: raw}}\nserver: {host: 127.0.0.1, port: %s}\nkubernetes:\n  accounts:\n  - name: refreshed\n    kubeconfigFile: %s\n    kinds: [namespace]\n",
		cp.grpc, cmd, port, c.KubeconfigPath))
	cp.watching(t, "refreshed")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || seen[0] != "Bearer token-1" || seen[len(seen)-1] != "Bearer token-2" {
		t.Errorf("tokens sent: %v, want token-1 refused, then token-2", seen)
	}
}

// A permissions edit of an account that is failing (its API server cannot
// be reached) reaches the account API with the account's next error
// report, without waiting for the account to recover.
func TestPermissionsEditWhileAccountFails(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	kubeconfig := filepath.Join(t.TempDir(), "down.kubeconfig")
	// A port nothing listens on: every attempt fails at once.
	down := freeAddr(t)
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: down, cluster: {server: "http://%s"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: down, context: {cluster: down, user: u}}]
current-context: down
`, down)), 0o600); err != nil {
		t.Fatal(err)
	}
	acct := func(roles ...string) agent.Account {
		return agent.Account{Name: "failing", KubeconfigFile: kubeconfig, Permissions: map[string][]string{"READ": roles}}
	}
	ag := startAgent(t, cp.grpc, acct("dev"))
	state := func(want string) {
		t.Helper()
		eventually(t, wait, func() string {
			var a struct {
				AgentStates map[string]string
				Permissions map[string][]string
			}
			code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/failing", nil, &a)
			if err != nil || code != 200 {
				return fmt.Sprintf("GET account: %d %s %v", code, body, err)
			}
			got := fmt.Sprint(a.Permissions)
			for _, st := range a.AgentStates {
				got += " " + st
			}
			if got != want {
				return fmt.Sprintf("account: %q, want %q", got, want)
			}
			return ""
		})
	}
	state("map[READ:[dev]] ERROR")
	if err := ag.SetAccounts([]agent.Account{acct("ops")}); err != nil {
		t.Fatal(err)
	}
	state("map[READ:[ops]] ERROR")
}
