package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	for _, c := range admin.Clusters {
		return writeKubeconfigFor(t, c.Server, c.CertificateAuthorityData, user)
	}
	t.Fatal("the cluster's kubeconfig names no cluster")
	return ""
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
	cfg, err := restConfig(acct, slog.New(slog.DiscardHandler))
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

// writeKubeconfigFor writes a kubeconfig of server (CA caPEM) with user
// and returns its path.
func writeKubeconfigFor(t *testing.T, server string, caPEM []byte, user *clientcmdapi.AuthInfo) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["u"] = user
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TLS problems name the account, its kubeconfig file and the key to fix,
// never the file's content.
func TestTLSErrorsNameAccountAndKubeconfigKey(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	otherCA := selfSignedCA(t) // not the server's

	t.Run("unknown authority", func(t *testing.T) {
		path := writeKubeconfigFor(t, srv.URL, otherCA, &clientcmdapi.AuthInfo{Token: "secret-token-value"})
		acct := Account{Name: "wrongca", KubeconfigFile: path}
		cfg, err := restConfig(acct, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		_, err = probe(context.Background(), acct, cfg)
		if err == nil {
			t.Fatal("probe trusted a server of another CA")
		}
		for _, want := range []string{"account wrongca", path, "certificate-authority-data", "unknown authority"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
	t.Run("bad client-certificate-data", func(t *testing.T) {
		path := writeKubeconfigFor(t, srv.URL, otherCA, &clientcmdapi.AuthInfo{
			ClientCertificateData: []byte("not-a-pem-secret"), ClientKeyData: []byte("not-a-pem-key-secret")})
		_, err := restConfig(Account{Name: "badcert", KubeconfigFile: path}, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Fatal("restConfig accepted a certificate that is not PEM")
		}
		for _, want := range []string{"account badcert", path, "client-certificate-data", "failed to find any PEM data in certificate input"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error quotes the kubeconfig: %q", err)
		}
	})
}

// selfSignedCA returns a PEM CA certificate of a fresh key.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
