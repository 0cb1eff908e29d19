package agent

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// writeKubeconfigAs writes a kubeconfig of cluster's API server (its CA)
// with user as the credentials, and returns its path.
func writeKubeconfigAs(t *testing.T, cluster *testenv.Cluster, user *clientcmdapi.AuthInfo) string {
	t.Helper()
	admin, err := clientcmd.LoadFromFile(cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	for _, c := range admin.Clusters {
		cfg.Clusters["c"] = c
	}
	cfg.AuthInfos["u"] = user
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// A kubeconfig whose user has no credentials the agent recognises (a typo:
// "tokenn") reaches the API server anonymously: discovery fails with the
// server's message and a hint, not "unknown".
func TestDiscoverAnonymousNamesTheServersAnswer(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	path := writeKubeconfigAs(t, cluster, &clientcmdapi.AuthInfo{})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), "users:\n- name: u\n  user: {}", "users:\n- name: u\n  user:\n    tokenn: abc", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "tokenn: abc") {
		t.Fatalf("the kubeconfig has no misspelt key:\n%s", data)
	}
	acct := Account{Name: "anon", KubeconfigFile: path}
	cfg, err := restConfig(acct)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = discoverStreams(dc, acct, discardLogger())
	if err == nil {
		t.Fatal("anonymous discovery succeeded")
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("error %v is not a Forbidden one any more", err)
	}
	for _, want := range []string{`forbidden: User "system:anonymous" cannot get path "/api"`, "no credentials the agent recognises", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
