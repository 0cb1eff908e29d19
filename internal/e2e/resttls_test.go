package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/certs/certstest"
	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// The REST API over TLS with client certificates required (server.ssl,
// client-auth: need), on two replicas: an operation posted to the replica
// without the agent is forwarded over HTTPS to the one holding it, which
// verifies the forwarding replica's certificate (kubesvc.peerTls), and the
// task succeeds. Plain HTTP and clients without a certificate are refused.
func TestRESTOverTLSBetweenReplicas(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "rest-tls"})
	dir := t.TempDir()
	ca := certstest.NewCA(t, "kubesvc replicas CA")
	caFile := certstest.Write(t, dir, "ca.pem", ca.PEM)
	// Replicas present their REST certificate to each other; it names the
	// Service they share, not their address (127.0.0.1 here): the forward
	// verifies it for kubesvc.peerTls.serverName.
	replicaCert := ca.IssueFor(t, pkix.Name{CommonName: "spin-clouddriver"}, []string{"spin-clouddriver.spinnaker.svc"}, nil)
	certFile := certstest.Write(t, dir, "tls.crt", replicaCert.CertPEM)
	keyFile := certstest.Write(t, dir, "tls.key", replicaCert.KeyPEM)

	db := filepath.Join(dir, "cluster.db")
	start := func(id, serverName string) *controlPlane {
		addr := freeAddr(t)
		y := fmt.Sprintf(`server:
  ssl:
    enabled: true
    certificate: file:%s
    certificate-private-key: %s
    trust-certificate: %s
    client-auth: need
    enabled-protocols: [TLSv1.3]
kubesvc:
  baseUrl: https://%s
  peerTls: {serverName: %s}
`, certFile, keyFile, caFile, addr, serverName)
		o := fromConfigFile(t, dir, id, y)
		o.dbPath, o.id, o.opWait, o.httpAddr = db, id, 30*time.Second, addr
		return startControlPlane(t, o)
	}
	const service = "spin-clouddriver.spinnaker.svc"
	holder, entry := start("cp-holder", service), start("cp-entry", service)
	startAgent(t, holder.grpc, account("main", cluster))

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: service, Certificates: []tls.Certificate{mustKeyPair(t, ca.Issue(t, pkix.Name{CommonName: "spinnaker"}))},
	}}}
	do := func(method, url, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The entry replica learns where the agent is from the database, and
	// the version the agent sent the holder with it.
	var seen string
	eventually(t, wait, func() string {
		code, body := do("GET", entry.http+"/armory/agents", "")
		if code != http.StatusOK || !strings.Contains(body, "main") {
			return fmt.Sprintf("entry replica's agents: %d %s", code, body)
		}
		seen = body
		return ""
	})
	var agents []struct {
		AgentID       string `json:"agentId"`
		ClouddriverID string `json:"clouddriverId"`
		Version       string `json:"version"`
	}
	if err := json.Unmarshal([]byte(seen), &agents); err != nil || len(agents) != 1 ||
		agents[0].ClouddriverID != "cp-holder" || agents[0].Version != "test" {
		t.Errorf("entry replica's agents: %s (%v); want the agent on cp-holder, of version \"test\"", seen, err)
	}
	op := `[{"deployManifest": {"account": "main", "moniker": {"app": "tls"}, "manifests": [
	  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "over-tls", "namespace": "default"}, "data": {"a": "b"}}]}}]`
	code, body := do("POST", entry.http+"/kubernetes/ops?clientRequestId=tls-1", op)
	if code != http.StatusOK {
		t.Fatalf("POST /kubernetes/ops on the entry replica: %d %s", code, body)
	}
	code, body = do("GET", entry.http+"/task/tls-1?waitMs=30000", "")
	var tk task
	if err := json.Unmarshal([]byte(body), &tk); err != nil || code != http.StatusOK {
		t.Fatalf("GET /task/tls-1: %d %s %v", code, body, err)
	}
	if tk.State != "SUCCEEDED" {
		t.Fatalf("forwarded deploy: %s %s", tk.State, body)
	}
	cs, _ := clients(t, cluster)
	if _, err := cs.CoreV1().ConfigMaps("default").Get(t.Context(), "over-tls-v000", metav1.GetOptions{}); err != nil {
		t.Fatalf("the forwarded deploy did not reach the cluster: %v (task: %s)", err, body)
	}

	// A replica expecting another name in its peers' certificates fails
	// the forward at once, saying why, rather than waiting for the agent.
	misconfigured := start("cp-misconfigured", "elsewhere.example")
	eventually(t, wait, func() string {
		code, body := do("GET", misconfigured.http+"/armory/agents", "")
		if code != http.StatusOK || !strings.Contains(body, "main") {
			return fmt.Sprintf("misconfigured replica's agents: %d %s", code, body)
		}
		return ""
	})
	if code, body := do("POST", misconfigured.http+"/kubernetes/ops?clientRequestId=tls-2", op); code != http.StatusOK {
		t.Fatalf("POST /kubernetes/ops on the misconfigured replica: %d %s", code, body)
	}
	code, body = do("GET", misconfigured.http+"/task/tls-2?waitMs=30000", "")
	if err := json.Unmarshal([]byte(body), &tk); err != nil || tk.State != "FAILED" || !strings.Contains(body, "REST certificate does not verify") {
		t.Errorf("forward to a peer whose certificate does not verify: %d %s", code, body)
	}

	// Plain HTTP, and TLS without a client certificate, are refused.
	if resp, err := http.Get(strings.Replace(entry.http, "https://", "http://", 1) + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP to the TLS port answered %d", resp.StatusCode)
		}
	}
	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: service}}}
	if resp, err := anonymous.Get(entry.http + "/health"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got %d with client-auth: need", resp.StatusCode)
	}
}

func mustKeyPair(t *testing.T, leaf *certstest.Leaf) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fromConfigFile loads a control plane configuration file (written to dir
// as ID.yml) the way the binary does and returns the options it sets for
// the REST API: TLS, the peers' TLS, the base URL, the proxy.
func fromConfigFile(t *testing.T, dir, id, yaml string) cpOptions {
	t.Helper()
	cfg, err := cpconfig.Load(certstest.Write(t, dir, id+".yml", []byte(yaml)))
	if err != nil {
		t.Fatal(err)
	}
	o := cpOptions{baseURL: cfg.Cluster.BaseURL, proxy: cfg.Proxy}
	if o.httpTLS, err = cfg.RESTTLS(testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if o.peerTLS, err = cfg.PeerTLS(testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if o.proxySubjects, err = cfg.ProxyFilter(); err != nil {
		t.Fatal(err)
	}
	return o
}
