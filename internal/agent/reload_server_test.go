package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/testenv"
	"github.com/kubesvc/kubesvc/internal/testlog"
)

// await reads the session's messages until every one of want (see
// describe) has arrived, however long the agent takes within a generous
// deadline; it returns the last SyncEnd version seen.
func (s *clusterSession) await(t *testing.T, want ...string) (syncEndRV string) {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	deadline := time.Now().Add(3 * time.Minute)
	var seen []string
	for len(missing) > 0 && time.Now().Before(deadline) {
		m := s.d.tryNext()
		if m == nil {
			continue
		}
		for _, c := range m.GetChanges().GetChanges() {
			if e := c.GetSyncEnd(); e != nil {
				syncEndRV = e.GetResourceVersion()
			}
		}
		for _, desc := range describe(m) {
			delete(missing, desc)
			if len(seen) < 200 {
				seen = append(seen, desc)
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("not all of %v from the agent; received %v", want, seen)
	}
	return syncEndRV
}

// installFile copies src to dst by an atomic rename, as a Secret volume's
// update or an editor's save.
func installFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFileAtomic(t, dst, data)
}

// writeFileAtomic writes path by an atomic rename.
func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// move is an agent whose account "moving" is on the first of two
// clusters, each with a ConfigMap of its own (in-first, in-second) in
// namespace rot, through the kubeconfig file at path.
type move struct {
	first, second *testenv.Cluster
	rot1, rot2    *tokenRotation
	path          string
	agent         *Agent
	logs          *testlog.Buffer
}

// newMove starts the two clusters (named name-first, name-second) and the
// agent; pollEvery, if not 0, is how often the account reads its file.
func newMove(t *testing.T, name string, pollEvery time.Duration) *move {
	t.Helper()
	m := &move{
		first:  testenv.StartForTest(t, testenv.Options{Name: name + "-first"}),
		second: testenv.StartForTest(t, testenv.Options{Name: name + "-second"}),
		path:   filepath.Join(t.TempDir(), "account.kubeconfig"),
		logs:   &testlog.Buffer{},
	}
	m.rot1, m.rot2 = newTokenRotation(t, m.first), newTokenRotation(t, m.second)
	m.rot1.createConfigMap("in-first")
	m.rot2.createConfigMap("in-second")
	installFile(t, m.rot1.path, m.path)
	acct := Account{Name: "moving", KubeconfigFile: m.path, Kinds: []string{"configmap"}, Namespaces: []string{"rot"},
		MaxResumableAge: time.Hour, pollEvery: pollEvery}
	log := slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(Config{Target: "unused:1", ID: "agent", ZoneID: "zone", Log: log, Accounts: []Account{acct}})
	if err != nil {
		t.Fatal(err)
	}
	m.agent = a
	return m
}

// An account's kubeconfig file is rewritten to name another API server,
// of another cluster: the agent restarts the account against it (a list
// of the new cluster's objects, then its watch), without an agent
// restart. First while the old server still runs but refuses the old
// credentials (seen when the agent reconnects to the control plane and
// resumes its watch there), then while the old server is down
// (connections refused): the file is read again on those failures too.
// The tokens never reach the log; the move is logged with both servers.
func TestKubeconfigNamesAnotherServer(t *testing.T) {
	t.Parallel()
	m := newMove(t, "move", 0)
	first, second, rot1, rot2, path, a, logs := m.first, m.second, m.rot1, m.rot2, m.path, m.agent, m.logs
	// The sessions below share one agent.
	run := func(welcome *kubesvcv1.Welcome) *clusterSession { return runClusterSession(t, a, welcome) }

	var sess *clusterSession
	t.Run("the old server refuses the old credentials", func(t *testing.T) {
		s1 := run(nil)
		rv := s1.await(t, "listed:in-first", "end", "WATCHING")
		s1.stop()

		// The cluster moved: the file names the second one, and the
		// first one no longer takes the token the agent holds.
		installFile(t, rot2.path, path)
		rot1.rotate()

		key := &kubesvcv1.StreamKey{Account: "moving", Namespace: "rot", Resource: &kubesvcv1.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
		sess = run(&kubesvcv1.Welcome{SessionId: "s2", ResumePoints: []*kubesvcv1.ResumePoint{{Stream: key, ResourceVersion: rv, UpdatedAtMs: time.Now().UnixMilli()}}})
		sess.await(t, "listed:in-second")
		rot2.createConfigMap("second-later")
		sess.await(t, "upserted:second-later")
	})
	if t.Failed() {
		return
	}

	t.Run("the old server is down", func(t *testing.T) {
		if err := second.Stop(); err != nil {
			t.Fatal(err)
		}
		// rot1.path holds the first cluster's token issued since.
		installFile(t, rot1.path, path)
		sess.await(t, "listed:in-first")
		rot1.createConfigMap("first-later")
		sess.await(t, "upserted:first-later")
	})

	out := logs.String()
	if n := strings.Count(out, "the account's kubeconfig file names another API server; restarting the account against it"); n != 2 {
		t.Errorf("%d moves logged, want 2 (once each):\n%s", n, out)
	}
	for _, want := range []string{
		`server=` + second.Host + ` previousServer=` + first.Host,
		`server=` + first.Host + ` previousServer=` + second.Host,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no move logged with %s:\n%s", want, out)
		}
	}
	for _, tok := range append(rot1.tokens, rot2.tokens...) {
		if strings.Contains(out, tok) {
			t.Errorf("a token is in the log:\n%s", out)
		}
	}
}

// A kubeconfig file rewritten to name another API server moves the
// account even while the old server still answers and takes the old
// credentials: the file is read again periodically, not only when a
// request fails.
func TestKubeconfigNamesAnotherServerWhileTheOldOneServes(t *testing.T) {
	t.Parallel()
	m := newMove(t, "poll", 200*time.Millisecond)
	first, second, rot2, path, logs := m.first, m.second, m.rot2, m.path, m.logs
	sess := runClusterSession(t, m.agent, nil)
	sess.await(t, "listed:in-first", "end", "WATCHING")

	installFile(t, rot2.path, path) // the first server goes on serving the old token
	sess.await(t, "listed:in-second")
	rot2.createConfigMap("second-later")
	sess.await(t, "upserted:second-later")
	if out := logs.String(); !strings.Contains(out, `server=`+second.Host+` previousServer=`+first.Host) {
		t.Errorf("no move logged with both servers:\n%s", out)
	}
}

// rotateServingCert replaces cluster's API server certificate with one of
// a new CA, waits until the server presents it, and returns the new CA.
func rotateServingCert(t *testing.T, cluster *testenv.Cluster) []byte {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100), Subject: pkix.Name{CommonName: "rotated-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(101), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certFile, keyFile := cluster.ServingCertFiles()
	writeFileAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	writeFileAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))

	u, err := url.Parse(cluster.Host)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err == nil {
			conn.Close()
			return caPEM
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not present the new certificate: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A CA file the account's clients trust follows a rotation of the
// cluster's CA: clients built before, that no longer trust the API
// server's certificate, trust it once the new CA is written into the file,
// without a restart (client-go alone reads such a file again only every
// five minutes). Both for the in-cluster service account's ca.crt and a
// kubeconfig file's certificate-authority.
func TestCAFileRotation(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	rot := newTokenRotation(t, cluster)
	token := rot.tokens[len(rot.tokens)-1]
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	trusted := cluster.RESTConfig().CAData // the CA of the server's certificate

	// follows rotates the server's certificate and checks that the
	// clients of acct, built before, follow the CA written into caFile.
	follows := func(t *testing.T, acct Account, caFile string) {
		t.Helper()
		cms := rotConfigMaps(t, acct, log)
		trusted = rotateServingCert(t, cluster)
		if _, err := cms.List(context.Background(), metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "x509") {
			t.Fatalf("list with the old CA: %v, want a certificate not trusted", err)
		}
		writeFileAtomic(t, caFile, trusted)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			_, err := cms.List(context.Background(), metav1.ListOptions{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("list after the CA file was rewritten: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	t.Run("in-cluster service account", func(t *testing.T) {
		dir := t.TempDir()
		files := &inClusterFiles{host: cluster.Host, tokenFile: filepath.Join(dir, "token"), caFile: filepath.Join(dir, "ca.crt")}
		writeFileAtomic(t, files.tokenFile, []byte(token))
		writeFileAtomic(t, files.caFile, trusted)
		follows(t, Account{Name: "incluster", ServiceAccount: true, inCluster: files}, files.caFile)
		if !strings.Contains(logs.String(), "the service account's CA file changed") {
			t.Errorf("the CA file's change is not logged:\n%s", logs.String())
		}
	})
	if t.Failed() {
		return
	}

	t.Run("kubeconfig certificate-authority file", func(t *testing.T) {
		dir := t.TempDir()
		caFile, path := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "kubeconfig")
		writeFileAtomic(t, caFile, trusted)
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: cluster.Host, CertificateAuthority: caFile}
		cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
		cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
		cfg.CurrentContext = "c"
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			t.Fatal(err)
		}
		follows(t, Account{Name: "cafile", KubeconfigFile: path}, caFile)
	})
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token is in the log:\n%s", logs.String())
	}
}
