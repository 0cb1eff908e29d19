package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/peers"
)

// Outside a pod, kubernetes peer discovery without a namespace refuses to
// start instead of watching the namespace "default".
func TestKubernetesDiscoveryNeedsANamespaceOutsideAPod(t *testing.T) {
	if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		t.Skip("running in a pod")
	}
	t.Setenv("POD_NAMESPACE", "")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &cpconfig.Config{Cluster: cpconfig.Cluster{Mode: cpconfig.ClusterKubernetes,
		Kubernetes: cpconfig.ClusterKubernetesConfig{KubeconfigFile: kubeconfig, VerifySSL: true}}}
	_, err := peerDiscovery(cfg, slog.New(slog.DiscardHandler))
	if !errors.Is(err, peers.ErrNoNamespace) {
		t.Fatalf("peerDiscovery: %v, want %v", err, peers.ErrNoNamespace)
	}
	cfg.Cluster.Kubernetes.Namespace = "spinnaker"
	if _, err := peerDiscovery(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("with a namespace: %v", err)
	}
}

// The default base URL: the pod's IP, else the REST API's own address when
// it names one host, else the host name.
func TestDefaultBaseURL(t *testing.T) {
	host, _ := os.Hostname()
	t.Setenv("POD_IP", "")
	for addr, want := range map[string]string{
		"":          "http://" + host + ":7002",
		"0.0.0.0":   "http://" + host + ":7002",
		"::":        "http://" + host + ":7002",
		"127.0.0.1": "http://127.0.0.1:7002",
		"::1":       "http://[::1]:7002",
	} {
		cfg := &cpconfig.Config{Server: cpconfig.Server{Address: addr, Port: 7002}}
		if got := defaultBaseURL(cfg); got != want {
			t.Errorf("server.address %q: %q, want %q", addr, got, want)
		}
	}
	t.Setenv("POD_IP", "10.0.0.7")
	if got := defaultBaseURL(&cpconfig.Config{Server: cpconfig.Server{Address: "127.0.0.1", Port: 7002}}); got != "http://10.0.0.7:7002" {
		t.Errorf("in a pod: %q", got)
	}
}
