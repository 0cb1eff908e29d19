package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/certs/certstest"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// proxyClient is a client-go clientset whose server is the control plane's
// Kubernetes API proxy for account: every request goes REST -> control
// plane -> agent's stream -> API server.
func proxyClient(t *testing.T, base, account string) (*kubernetes.Clientset, string) {
	t.Helper()
	host := base + "/agents/kubernetes/accounts/" + account + "/proxy"
	// No Timeout: client-go would apply it to watches too.
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	return cs, host
}

// rawGet GETs url and returns the status and body.
func rawGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func relaying(mod func(*agent.Config)) func(*agent.Config) {
	return func(c *agent.Config) {
		c.Proxy = agent.ProxyConfig{Enabled: true, Writes: true}
		if mod != nil {
			mod(c)
		}
	}
}

// A client-go clientset pointed at the proxy works against the account's
// cluster: discovery, writes, reads, lists larger than the flow-control
// window, and watches, which end on the agent when the client stops. Secrets
// and service account tokens are refused, and a Secret's data never shows
// in any answer.
func TestKubernetesAPIProxy(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "proxy"})
	direct, _ := clients(t, cluster)
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), proxy: true})
	ag := startAgentWith(t, "agent-proxy", "zone-test", cp.grpc, relaying(nil), agent.Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"ConfigMap"}})
	cp.watching(t, "main")
	ctx, cancel := context.WithTimeout(t.Context(), 2*wait)
	defer cancel()
	pc, host := proxyClient(t, cp.http, "main")

	// Discovery.
	want, err := direct.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	got, err := pc.Discovery().ServerVersion()
	if err != nil || got.GitVersion != want.GitVersion {
		t.Fatalf("version through the proxy: %+v, %v; want %s", got, err, want.GitVersion)
	}
	if _, err := pc.Discovery().ServerPreferredResources(); err != nil {
		t.Fatalf("discovery through the proxy: %v", err)
	}

	// A write through the proxy reaches the cluster; reads see it.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "proxied"}}
	if _, err := pc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a namespace through the proxy: %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "via-proxy", Namespace: "proxied"}, Data: map[string]string{"k": "v"}}
	if _, err := pc.CoreV1().ConfigMaps("proxied").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create through the proxy: %v", err)
	}
	if got, err := direct.CoreV1().ConfigMaps("proxied").Get(ctx, "via-proxy", metav1.GetOptions{}); err != nil || got.Data["k"] != "v" {
		t.Fatalf("the proxied create did not reach the cluster: %v %v", got, err)
	}
	if _, err := pc.CoreV1().ConfigMaps("proxied").Get(ctx, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a missing object through the proxy: %v, want the API server's NotFound", err)
	}

	// A list of ~1.2 MiB, incompressible (the API server gzips large
	// answers): more than the window (16 chunks of 32 KiB), so the control
	// plane must return the window as the client reads.
	for i := range 300 {
		big := make([]byte, 3<<10)
		_, _ = rand.Read(big)
		c := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bulk-%03d", i), Namespace: "proxied"}, Data: map[string]string{"d": base64.StdEncoding.EncodeToString(big)}}
		if _, err := direct.CoreV1().ConfigMaps("proxied").Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := pc.CoreV1().ConfigMaps("proxied").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) < 301 {
		t.Fatalf("large list through the proxy: %d items, %v", len(list.Items), err)
	}

	// kubectl get asks for a Table: the Accept header crosses the proxy.
	req, _ := http.NewRequestWithContext(ctx, "GET", host+"/api/v1/namespaces/proxied/configmaps?limit=5", nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	if code, table := do(t, req); code != http.StatusOK || !strings.Contains(table, `"kind":"Table"`) || !strings.Contains(table, `"columnDefinitions"`) {
		t.Errorf("a Table through the proxy: %d %.300s", code, table)
	}

	// A watch streams events as they happen, and stopping it ends the
	// relayed request on the agent.
	w, err := pc.CoreV1().ConfigMaps("proxied").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch through the proxy: %v", err)
	}
	eventually(t, wait, func() string {
		if n := ag.Stats().ProxyActive.Load(); n != 1 {
			return fmt.Sprintf("relayed requests in flight during the watch: %d, want 1", n)
		}
		return ""
	})
	if _, err := direct.CoreV1().ConfigMaps("proxied").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched", Namespace: "proxied"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitAdded(t, w, "watched")
	w.Stop()
	noRelays(t, ag)

	// Secrets and tokens are refused by the control plane and the agent
	// alike; the Secret's data shows nowhere.
	const sentinel = "proxy-sentinel-7f3a9c"
	if _, err := direct.CoreV1().Secrets("proxied").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "proxied"},
		StringData: map[string]string{"password": sentinel}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CoreV1().Secrets("proxied").Get(ctx, "s", metav1.GetOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "Secret data never leaves the agent") {
		t.Errorf("get a Secret through the proxy: %v, want Forbidden", err)
	}
	if _, err := pc.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list Secrets through the proxy: %v, want Forbidden", err)
	}
	if _, err := pc.CoreV1().ServiceAccounts("proxied").CreateToken(ctx, "default", nil, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create a token through the proxy: %v, want Forbidden", err)
	}
	for _, p := range []string{"/api/v1/watch/namespaces/proxied/secrets", "/api/v1/namespaces/proxied/secrets/s", "/api/v1/secrets?watch=1", "/metrics"} {
		code, body := rawGet(t, host+p)
		if code != http.StatusForbidden || strings.Contains(body, sentinel) || !strings.Contains(body, `"kind":"Status"`) {
			t.Errorf("GET %s through the proxy: %d %s, want a 403 Status", p, code, body)
		}
	}
	if code, body := rawGet(t, host+"/api/v1/namespaces/proxied/pods/p/exec"); code != http.StatusBadRequest || !strings.Contains(body, "needs a connection upgrade") {
		t.Errorf("exec without an upgrade: %d %s", code, body)
	}
	// A namespace's list of everything it may read: ConfigMaps yes, the
	// Secret's data no (the API server would list it; the proxy does not
	// relay the kind at all).
	if _, body := rawGet(t, host+"/api/v1/namespaces/proxied/configmaps"); strings.Contains(body, sentinel) {
		t.Error("the Secret's data in a proxied ConfigMap list")
	}

	// Requests that could not cross the stream are refused before they
	// are sent: the agent's session is never put at risk.
	connects := ag.Stats().Connects.Load()
	if code, body := rawGet(t, host+"/api/v1/namespaces/%ff/configmaps"); code != http.StatusBadRequest || !strings.Contains(body, "not valid UTF-8") {
		t.Errorf("a path that is not UTF-8: %d %s", code, body)
	}
	big, _ := http.NewRequestWithContext(ctx, "GET", host+"/api/v1/namespaces", nil)
	big.Header.Set("User-Agent", strings.Repeat("u", 300<<10))
	if code, body := do(t, big); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over the limit: %d %s", code, body)
	}
	if _, err := pc.CoreV1().Namespaces().Get(ctx, "proxied", metav1.GetOptions{}); err != nil || ag.Stats().Connects.Load() != connects {
		t.Errorf("after the refused requests: %v, sessions %d -> %d", err, connects, ag.Stats().Connects.Load())
	}

	// Unknown account: the proxy's own NotFound.
	other, _ := proxyClient(t, cp.http, "nope")
	if _, err := other.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "no connected agent serves it") {
		t.Errorf("proxy to an unknown account: %v", err)
	}
	code, body := rawGet(t, cp.http+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `kubesvc_controlplane_proxy_requests_total{code="403"}`) || !strings.Contains(body, `kubesvc_controlplane_proxy_requests_total{code="201"}`) {
		t.Errorf("proxy metrics: %d\n%s", code, grepLines(body, "proxy"))
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// The proxy is off unless both ends enable it, and an agent relays only
// reads unless told otherwise; each refusal names the setting.
func TestKubernetesAPIProxySettings(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "proxy-settings"})
	ctx := t.Context()
	acct := func(name string) agent.Account {
		return agent.Account{Name: name, KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"ConfigMap"}}
	}

	off := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "off.db")})
	startAgentWith(t, "agent-off-cp", "zone-test", off.grpc, relaying(nil), acct("main"))
	off.watching(t, "main")
	pc, _ := proxyClient(t, off.http, "main")
	if _, err := pc.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "kubesvc.proxy.enabled") {
		t.Errorf("control plane without kubesvc.proxy.enabled: %v", err)
	}

	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "on.db"), proxy: true})
	startAgentWith(t, "agent-default", "zone-test", cp.grpc, nil, acct("closed"))
	startAgentWith(t, "agent-reads", "zone-test", cp.grpc, relaying(func(c *agent.Config) { c.Proxy.Writes = false }), acct("reads"))
	cp.watching(t, "closed")
	cp.watching(t, "reads")

	closed, _ := proxyClient(t, cp.http, "closed")
	if _, err := closed.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "kubernetes.proxy.enabled") {
		t.Errorf("agent without kubernetes.proxy.enabled: %v", err)
	}
	reads, _ := proxyClient(t, cp.http, "reads")
	if _, err := reads.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("a read through a read-only agent: %v", err)
	}
	_, err := reads.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "refused"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "kubernetes.proxy.readOnly") {
		t.Errorf("a write through a read-only agent: %v", err)
	}
	direct, _ := clients(t, cluster)
	if _, err := direct.CoreV1().ConfigMaps("default").Get(ctx, "refused", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused write reached the cluster: %v", err)
	}
	// exec through a read-only agent: refused, naming the setting.
	req, _ := http.NewRequestWithContext(ctx, "POST", cp.http+"/agents/kubernetes/accounts/reads/proxy/api/v1/namespaces/default/pods/p/exec?command=sh", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	if code, body := do(t, req); code != http.StatusForbidden || !strings.Contains(body, "relayed only with writes (kubernetes.proxy.readOnly") {
		t.Errorf("exec through a read-only agent: %d %s", code, body)
	}
}

// A proxied request to a replica that does not hold the agent is forwarded
// to the one that does, watches included.
func TestKubernetesAPIProxyThroughAnotherReplica(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "proxy-replicas"})
	db := filepath.Join(t.TempDir(), "cluster.db")
	start := func(id string) *controlPlane {
		addr := freeAddr(t)
		return startControlPlane(t, cpOptions{dbPath: db, id: id, proxy: true, httpAddr: addr, baseURL: "http://" + addr})
	}
	holder, entry := start("cp-holder"), start("cp-entry")
	ag := startAgentWith(t, "agent-replicas", "zone-test", holder.grpc, relaying(nil), agent.Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"ConfigMap"}})
	holder.watching(t, "main")
	pc, _ := proxyClient(t, entry.http, "main")
	ctx := t.Context()
	// The entry replica learns where the agent is from the database.
	eventually(t, wait, func() string {
		if _, err := pc.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return fmt.Sprintf("get through the entry replica: %v", err)
		}
		return ""
	})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := pc.CoreV1().ConfigMaps("default").Watch(wctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch through the entry replica: %v", err)
	}
	direct, _ := clients(t, cluster)
	if _, err := direct.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "forwarded"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitAdded(t, w, "forwarded")
	w.Stop()
	noRelays(t, ag)
}

// awaitAdded waits for the ADDED event of ConfigMap name on w.
func awaitAdded(t *testing.T, w watch.Interface, name string) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the watch ended before the ADDED event of %s", name)
			}
			if m, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type == watch.Added && m.Name == name {
				return
			}
		case <-timeout:
			t.Fatalf("no ADDED event of %s through the watch", name)
		}
	}
}

// noRelays waits until the agent relays nothing (a stopped watch ended
// on the agent too).
func noRelays(t *testing.T, ag *runningAgent) {
	t.Helper()
	noRelaysBut(t, ag, 0)
}

// noRelaysBut waits until the agent relays exactly n requests.
func noRelaysBut(t *testing.T, ag *runningAgent, n int64) {
	t.Helper()
	eventually(t, wait, func() string {
		if got := ag.Stats().ProxyActive.Load(); got != n {
			return fmt.Sprintf("%d relayed requests in flight, want %d", got, n)
		}
		return ""
	})
}

// kubesvc.proxy.x509.filters admits only clients whose certificate's
// subject matches: another certificate from the same CA, or none, gets a
// 403 naming the setting.
func TestKubernetesAPIProxyClientCertificates(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "proxy-mtls"})
	dir := t.TempDir()
	ca := certstest.NewCA(t, "kubesvc CA")
	server := ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	y := fmt.Sprintf(`server:
  ssl:
    enabled: true
    certificate: %s
    certificate-private-key: %s
    trust-certificate: %s
    client-auth: want
kubesvc:
  proxy:
    enabled: true
    x509: {filters: ["^CN=deployer,O=platform$"]}
`, certstest.Write(t, dir, "tls.crt", server.CertPEM), certstest.Write(t, dir, "tls.key", server.KeyPEM), certstest.Write(t, dir, "ca.pem", ca.PEM))
	o := fromConfigFile(t, dir, "cp", y)
	if o.proxySubjects == nil {
		t.Fatal("kubesvc.proxy.x509.filters loaded no filter")
	}
	o.dbPath = filepath.Join(dir, "cp.db")
	cp := startControlPlane(t, o)
	startAgentWith(t, "agent-mtls", "zone-test", cp.grpc, relaying(nil), agent.Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"Namespace"}})
	client := func(subject *pkix.Name) *kubernetes.Clientset {
		c := &rest.Config{Host: cp.http + "/agents/kubernetes/accounts/main/proxy", TLSClientConfig: rest.TLSClientConfig{CAData: ca.PEM}}
		if subject != nil {
			leaf := ca.Issue(t, *subject)
			c.TLSClientConfig.CertData, c.TLSClientConfig.KeyData = leaf.CertPEM, leaf.KeyPEM
		}
		cs, err := kubernetes.NewForConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	ctx := t.Context()
	eventually(t, wait, func() string {
		if _, err := client(&pkix.Name{CommonName: "deployer", Organization: []string{"platform"}}).CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return fmt.Sprintf("an allowed client: %v", err)
		}
		return ""
	})
	for name, subject := range map[string]*pkix.Name{
		"another certificate of the CA": {CommonName: "agent-1"},
		"a look-alike":                  {CommonName: "deployer", Organization: []string{"platform-evil"}},
		"no certificate":                nil,
	} {
		_, err := client(subject).CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "kubesvc.proxy.x509.filters") {
			t.Errorf("%s: %v, want Forbidden naming kubesvc.proxy.x509.filters", name, err)
		}
	}
	// A property file is a read of a Pod's log through the proxy, on the
	// REST client's behalf: the same certificates are refused.
	propertyFile := func(subject *pkix.Name) (int, string) {
		tc := &tls.Config{RootCAs: x509.NewCertPool()}
		tc.RootCAs.AppendCertsFromPEM(ca.PEM)
		if subject != nil {
			leaf := ca.Issue(t, *subject)
			pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get(cp.http + "/applications/shop/kubernetes/pods/main/default/no-such-pod/main")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := propertyFile(&pkix.Name{CommonName: "deployer", Organization: []string{"platform"}}); code != http.StatusNotFound || !strings.Contains(body, "no-such-pod") {
		t.Errorf("property file, an allowed client: %d %s, want the API server's 404", code, body)
	}
	if code, body := propertyFile(&pkix.Name{CommonName: "agent-1"}); code != http.StatusForbidden || !strings.Contains(body, "kubesvc.proxy.x509.filters") {
		t.Errorf("property file, a refused client: %d %s, want 403 naming kubesvc.proxy.x509.filters", code, body)
	}
}

// fakeExecServer is a FAKE KUBERNETES API SERVER for one thing a real one
// cannot do here: pods/exec needs a kubelet and a container runtime, which
// this machine has neither of. It answers an upgrade of
// /api/v1/namespaces/ns/pods/p/exec with 101 and then echoes what it reads,
// upper-cased, until a line "bye".
func fakeExecServer(t *testing.T) string {
	t.Helper()
	// TLS, offering HTTP/2 as a real API server does (an upgrade must
	// still reach it over HTTP/1.1); client-go sends a kubeconfig's
	// credentials only over TLS.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/namespaces/ns/pods/other/exec" {
			// Switches to another protocol than the one asked for.
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "something-else")
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		}
		if r.URL.Path != "/api/v1/namespaces/ns/pods/p/exec" || r.Header.Get("Upgrade") != "SPDY/3.1" || r.ProtoMajor != 1 {
			http.Error(w, "fake API server: only pods/exec with Upgrade: SPDY/3.1 over HTTP/1.1", http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer fake-token" {
			http.Error(w, "fake API server: not the account's credentials", http.StatusUnauthorized)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if line == "bye\n" || err != nil {
				return
			}
			_, _ = brw.WriteString(strings.ToUpper(line))
			_ = brw.Flush()
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	kubeconfig := filepath.Join(t.TempDir(), "fake.kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: u, user: {token: fake-token}}]
contexts: [{name: fake, context: {cluster: fake, user: u}}]
current-context: fake
`, srv.URL, base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// execEcho opens an upgraded exec through the proxy at base (over TLS
// with roots when they are set), exchanges lines (one of 1 MiB, past both
// directions' windows) and ends it.
func execEcho(t *testing.T, base string, roots *x509.CertPool) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	if roots != nil {
		conn, err = tls.Dial("tcp", u.Host, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	} else {
		conn, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	req, _ := http.NewRequest("POST", base+"/agents/kubernetes/accounts/fake/proxy/api/v1/namespaces/ns/pods/p/exec?command=cat", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("Authorization", "Bearer the-clients-own")
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "SPDY/3.1" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("exec through the proxy: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	big := strings.Repeat("abcdefghij", 100<<10) + "\n" // 1 MiB
	for _, line := range []string{"hello\n", big, "again\n"} {
		// Write and read at once: the echo's answer flows while we write.
		errc := make(chan error, 1)
		go func() { _, err := io.WriteString(conn, line); errc <- err }()
		got := make([]byte, len(line))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != strings.ToUpper(line) {
			t.Fatalf("echo of a %d-byte line: %v (got %.40q)", len(line), err, got)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	_, _ = io.WriteString(conn, "bye\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after bye: %v, want the connection closed", err)
	}
}

// exec, attach and port-forward are connection upgrades: relayed as a byte
// stream both ways through an agent relaying writes, directly or through
// another replica (the replicas serve HTTPS and HTTP/2, which an upgrade
// must not take), with the agent's credentials, not the client's.
func TestKubernetesAPIProxyExec(t *testing.T) {
	t.Parallel()
	kubeconfig := fakeExecServer(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "cluster.db")
	ca := certstest.NewCA(t, "kubesvc replicas CA")
	cert := ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	certFile, keyFile := certstest.Write(t, dir, "tls.crt", cert.CertPEM), certstest.Write(t, dir, "tls.key", cert.KeyPEM)
	caFile := certstest.Write(t, dir, "ca.pem", ca.PEM)
	start := func(id string) *controlPlane {
		addr := freeAddr(t)
		o := fromConfigFile(t, dir, id, fmt.Sprintf(
			"server: {ssl: {enabled: true, certificate: %s, certificate-private-key: %s, trust-certificate: %s}}\nkubesvc: {baseUrl: 'https://%s', proxy: {enabled: true}}\n",
			certFile, keyFile, caFile, addr))
		o.dbPath, o.id, o.httpAddr = db, id, addr
		return startControlPlane(t, o)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	holder, entry := start("cp-holder"), start("cp-entry")
	// The account's streams fail against the fake; the agent serves it
	// all the same, and relays.
	ag := startAgentWith(t, "agent-exec", "zone-test", holder.grpc, relaying(nil), agent.Account{Name: "fake", KubeconfigFile: kubeconfig, Kinds: []string{"Namespace"}})
	served := func(cp *controlPlane) {
		t.Helper()
		eventually(t, wait, func() string {
			resp, err := client.Get(cp.http + "/agents/kubernetes/accounts/fake")
			if err != nil {
				return err.Error()
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Sprintf("account fake: %d", resp.StatusCode)
			}
			return ""
		})
	}
	served(holder)
	execEcho(t, holder.http, roots)
	noRelays(t, ag)
	// An API server switching to another protocol than the one asked for
	// is refused.
	req, _ := http.NewRequest("POST", holder.http+"/agents/kubernetes/accounts/fake/proxy/api/v1/namespaces/ns/pods/other/exec", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	h1 := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		resp.Body.Close() // a 101's body is the connection: not read
		t.Errorf("an upgrade to another protocol: %d, want 502", resp.StatusCode)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `switched to \"something-else\"`) {
			t.Errorf("an upgrade to another protocol: %s", body)
		}
	}
	noRelays(t, ag)
	// The entry replica learns where the agent is from the database.
	served(entry)
	execEcho(t, entry.http, roots)
	noRelays(t, ag)
	// Both replicas count the upgrade as a 101 (the forwarding one writes
	// it through the connection it took over), once its handler returns:
	// the client may have read the end of the connection a moment before.
	for _, cp := range []*controlPlane{holder, entry} {
		eventually(t, wait, func() string {
			resp, err := client.Get(cp.http + "/metrics")
			if err != nil {
				return err.Error()
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `kubesvc_controlplane_proxy_requests_total{code="101"}`) {
				return fmt.Sprintf("%s: no 101 counted:\n%s", cp.http, grepLines(string(body), "proxy_requests"))
			}
			if !strings.Contains(string(body), `kubesvc_controlplane_http_requests_total{code="101",route="/agents/kubernetes/accounts/{accountName}/proxy/{path...}"}`) {
				return fmt.Sprintf("%s: no 101 counted by route:\n%s", cp.http, grepLines(string(body), "http_requests"))
			}
			return ""
		})
	}
}

// kubectlBinary builds (once, cached) and returns the kubectl of the
// pinned Kubernetes version (scripts/kubectl.sh).
func kubectlBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("../../scripts/kubectl.sh").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("scripts/kubectl.sh: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("scripts/kubectl.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// A real kubectl pointed at the proxy (--server) works as against the
// cluster: apply (discovery, OpenAPI validation, get, create), get as a
// table, delete; a Secret is refused with the proxy's message.
func TestKubectlThroughTheProxy(t *testing.T) {
	t.Parallel()
	kubectl := kubectlBinary(t)
	cluster := testenv.StartForTest(t, testenv.Options{Name: "proxy-kubectl"})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), proxy: true})
	startAgentWith(t, "agent-kubectl", "zone-test", cp.grpc, relaying(nil), agent.Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"Namespace"}})
	cp.watching(t, "main")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-kubeconfig") // nothing but --server
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), kubectl, append([]string{"--kubeconfig", empty, "--server", cp.http + "/agents/kubernetes/accounts/main/proxy", "--request-timeout", "30s"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "HOME="+dir, "KUBECACHEDIR="+filepath.Join(dir, "cache"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	manifest := `apiVersion: v1
kind: ConfigMap
metadata: {name: from-kubectl, namespace: default}
data: {greeting: hello}
`
	if out, err := run(manifest, "apply", "-f", "-"); err != nil || !strings.Contains(out, "configmap/from-kubectl created") {
		t.Fatalf("kubectl apply through the proxy: %v\n%s", err, out)
	}
	direct, _ := clients(t, cluster)
	if cm, err := direct.CoreV1().ConfigMaps("default").Get(t.Context(), "from-kubectl", metav1.GetOptions{}); err != nil || cm.Data["greeting"] != "hello" {
		t.Fatalf("the applied ConfigMap in the cluster: %v %v", cm, err)
	}
	if out, err := run("", "get", "configmaps", "-n", "default"); err != nil || !strings.Contains(out, "NAME") || !strings.Contains(out, "from-kubectl") {
		t.Errorf("kubectl get through the proxy: %v\n%s", err, out)
	}
	if out, err := run("", "get", "secrets", "-n", "default"); err == nil || !strings.Contains(out, "Secret data never leaves the agent") {
		t.Errorf("kubectl get secrets through the proxy: %v\n%s", err, out)
	}
	if out, err := run("", "delete", "configmap", "from-kubectl", "-n", "default"); err != nil || !strings.Contains(out, "deleted") {
		t.Errorf("kubectl delete through the proxy: %v\n%s", err, out)
	}
}

// A watch through the proxy over HTTPS (HTTP/2) that stays quiet longer
// than the stall limit lives on: the limit is for a client not reading a
// part being written, not for a quiet stream.
func TestKubernetesAPIProxyQuietWatchOverHTTP2(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "proxy-quiet"})
	dir := t.TempDir()
	ca := certstest.NewCA(t, "kubesvc CA")
	cert := ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	o := fromConfigFile(t, dir, "cp", fmt.Sprintf("server: {ssl: {enabled: true, certificate: %s, certificate-private-key: %s}}\nkubesvc: {proxy: {enabled: true}}\n",
		certstest.Write(t, dir, "tls.crt", cert.CertPEM), certstest.Write(t, dir, "tls.key", cert.KeyPEM)))
	o.dbPath, o.proxyStall = filepath.Join(dir, "cp.db"), time.Second
	cp := startControlPlane(t, o)
	ag := startAgentWith(t, "agent-quiet", "zone-test", cp.grpc, relaying(nil), agent.Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"Namespace"}})
	pc, err := kubernetes.NewForConfig(&rest.Config{Host: cp.http + "/agents/kubernetes/accounts/main/proxy", TLSClientConfig: rest.TLSClientConfig{CAData: ca.PEM}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	eventually(t, wait, func() string {
		if _, err := pc.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
	w, err := pc.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// A first event, so that a part was written (and its deadline set).
	direct, _ := clients(t, cluster)
	for _, name := range []string{"before-quiet", "after-quiet"} {
		if _, err := direct.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		awaitAdded(t, w, name)
		time.Sleep(3 * time.Second) // quiet, three times the stall limit
	}
	noRelaysBut(t, ag, 1)
}

// An agent lost in the middle of an answer breaks the answer off: the
// client's read fails rather than ending as if the body were whole.
func TestKubernetesAPIProxyAgentLostMidAnswer(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "proxy-lost"})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), proxy: true})
	link := startCutProxy(t, cp.grpc)
	startAgentWith(t, "agent-lost", "zone-test", link.addr(), relaying(nil), agent.Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"Namespace"}})
	cp.watching(t, "main")
	ctx := t.Context()
	req, _ := http.NewRequestWithContext(ctx, "GET", cp.http+"/agents/kubernetes/accounts/main/proxy/api/v1/namespaces/default/configmaps?watch=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch through the proxy: %d", resp.StatusCode)
	}
	// An event arrives: the answer is under way.
	direct, _ := clients(t, cluster)
	if _, err := direct.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "first"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, `"first"`) {
		t.Fatalf("first event: %q %v", line, err)
	}
	link.cut("")
	if rest, err := io.ReadAll(br); err == nil {
		t.Fatalf("the body ended cleanly after the agent was lost (%d more bytes): a client would take it for whole", len(rest))
	}
}
