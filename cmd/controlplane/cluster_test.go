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
