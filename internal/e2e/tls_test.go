package e2e

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/agent/config"
	"github.com/kubesvc/kubesvc/internal/agentapp"
	"github.com/kubesvc/kubesvc/internal/certs/certstest"
	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/testenv"
	"github.com/kubesvc/kubesvc/internal/testlog"
)

// runAgentApp runs the agent binary's code (agentapp.Run) on a
// configuration file holding yaml until the test ends, and returns the
// file's path (rewrite it with writeAtomically).
func runAgentApp(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "armory-agent.yml")
	writeAtomically(t, path, yaml)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agentapp.Run(ctx, []config.Source{{Path: path}}, testLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agentapp.Run: %v", err)
		}
	})
	return path
}

// The control plane's TLS, mTLS and x509 subject filtering, configured
// from YAML as in production (cpconfig, agentapp): an agent with an
// authorized certificate (its key encrypted) streams its cluster; one whose
// subject matches no filter is refused with PERMISSION_DENIED, logged and
// counted; one without a client certificate, one of another CA and a
// plaintext one never get in.
func TestMutualTLSWithSubjectFilter(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "mtls"})
	dir := t.TempDir()
	ca, otherCA := certstest.NewCA(t, "kubesvc CA"), certstest.NewCA(t, "someone else's CA")
	caFile := certstest.Write(t, dir, "ca.pem", ca.PEM)
	server := ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	cpYAML := fmt.Sprintf(`kubesvc:
  grpc:
    server:
      security:
        enabled: true
        certificateChain: file:%s
        privateKey: file://%s
        privateKeyPassword: server-pw
        clientAuth: REQUIRE
        trustCertCollection: file:%s
        protocols: TLSv1.2,TLSv1.3
    auth:
      x509:
        enabled: true
        filters: ['^CN=agent-[a-z]+,OU=scale-agents,O=Example$']
`, certstest.Write(t, dir, "server.pem", server.CertPEM), certstest.Write(t, dir, "server.key", server.EncryptedKeyPEM(t, "server-pw")), caFile)
	cpPath := certstest.Write(t, dir, "kubesvc.yml", []byte(cpYAML))
	cfg, err := cpconfig.Load(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, subjects, err := cfg.ServerTLS(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(dir, "cache.db"), tls: tlsCfg, subjects: subjects, logs: logs})

	agentConfig := func(id, tlsBlock string) string {
		_, port, _ := strings.Cut(freeAddr(t), ":")
		return fmt.Sprintf(`agent: {id: %s}
clouddriver:
  grpc: %s
  backoff: {baseDelay: 100000000, maxDelay: 500000000}
%s
server: {host: 127.0.0.1, port: %s}
kubernetes:
  accounts:
  - name: %s
    kubeconfigFile: %s
    kinds: [namespace]
`, id, cp.grpc, tlsBlock, port, id, cluster.KubeconfigPath)
	}
	clientTLS := func(leaf *certstest.Leaf, name string) string {
		return fmt.Sprintf("  insecure: false\n  tls:\n    cacertFile: file:%s\n    clientCertFile: %s\n    clientKeyFile: %s\n    clientKeyFilePassword: %s-pw",
			caFile, certstest.Write(t, dir, name+".pem", leaf.CertPEM), certstest.Write(t, dir, name+".key", leaf.EncryptedKeyPEM(t, name+"-pw")), name)
	}
	good := ca.Issue(t, pkix.Name{CommonName: "agent-good", OrganizationalUnit: []string{"scale-agents"}, Organization: []string{"Example"}})
	intruder := ca.Issue(t, pkix.Name{CommonName: "intruder", OrganizationalUnit: []string{"scale-agents"}, Organization: []string{"Example"}})
	stranger := otherCA.Issue(t, pkix.Name{CommonName: "agent-stranger", OrganizationalUnit: []string{"scale-agents"}, Organization: []string{"Example"}})

	runAgentApp(t, agentConfig("agent-intruder", clientTLS(intruder, "intruder")))
	runAgentApp(t, agentConfig("agent-stranger", clientTLS(stranger, "stranger")))
	runAgentApp(t, agentConfig("agent-nocert", fmt.Sprintf("  insecure: false\n  tls: {cacertFile: %s}", caFile)))
	runAgentApp(t, agentConfig("agent-plaintext", "  insecure: true"))
	runAgentApp(t, agentConfig("agent-good", clientTLS(good, "good")))

	// The authorized agent streams its cluster through the TLS stream.
	present(t, cp, q("account", "agent-good", "name", "default"), "/default")

	// The intruder was refused by subject: logged with its subject, counted.
	eventually(t, wait, func() string {
		if !strings.Contains(logs.String(), `subject="CN=intruder,OU=scale-agents,O=Example"`) {
			return "no refusal of the intruder's subject logged yet"
		}
		if n := metricValue(t, cp.http, "kubesvc_controlplane_grpc_unauthorized_total"); n < 1 {
			return fmt.Sprintf("kubesvc_controlplane_grpc_unauthorized_total = %v", n)
		}
		return ""
	})
	var agents []struct {
		AgentID string `json:"agentId"`
	}
	if code, body, err := getJSON(cp.http, "/armory/agents", nil, &agents); err != nil || code != 200 {
		t.Fatalf("GET /armory/agents: %d %s %v", code, body, err)
	}
	if len(agents) != 1 || agents[0].AgentID != "agent-good" {
		t.Errorf("connected agents %+v, want only agent-good", agents)
	}
	for _, account := range []string{"agent-intruder", "agent-stranger", "agent-nocert", "agent-plaintext"} {
		if code, _, _ := getJSON(cp.http, "/agents/kubernetes/accounts/"+account, nil, nil); code != 404 {
			t.Errorf("account %s of a refused agent: GET answered %d, want 404", account, code)
		}
	}
}

// metricValue reads one unlabelled sample from the REST API's /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
