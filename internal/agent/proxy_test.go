package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func proxyRequest(id, method, path, query string) *kubesvcv1.ControlMessage {
	return &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyRequest{ProxyRequest: &kubesvcv1.ProxyRequest{
		Id: id, Account: "acct", Method: method, Path: path, Query: query, Window: 4,
	}}}
}

// nextProxy returns the next ProxyResponse the agent sent for id, skipping
// everything else.
func nextProxy(t *testing.T, d *controlPlaneDouble, id string) *kubesvcv1.ProxyResponse {
	t.Helper()
	for {
		m := d.next(t)
		if r := m.GetProxyResponse(); r != nil && r.GetId() == id {
			return r
		}
	}
}

// The agent is the authority on what it relays, whatever the control
// plane sends it: off, it refuses everything; read-only, it refuses writes;
// Secrets never, in any form.
func TestAgentProxyPolicy(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "agent-proxy-policy"})
	acct := Account{Name: "acct", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"Namespace"}}
	for _, c := range []struct {
		proxy        ProxyConfig
		method, path string
		status       uint32
		says         string
	}{
		{ProxyConfig{}, "GET", "/api/v1/namespaces", 403, "kubernetes.proxy.enabled"},
		{ProxyConfig{Enabled: true}, "GET", "/api/v1/namespaces/default", 200, `"name":"default"`},
		{ProxyConfig{Enabled: true}, "POST", "/api/v1/namespaces", 403, "kubernetes.proxy.readOnly"},
		{ProxyConfig{Enabled: true, Writes: true}, "GET", "/api/v1/namespaces/default/secrets", 403, "Secret data never leaves the agent"},
		{ProxyConfig{Enabled: true, Writes: true}, "GET", "/api/v1/watch/secrets", 403, "Secrets are not relayed"},
		{ProxyConfig{Enabled: true, Writes: true}, "GET", "/metrics", 403, "only the Kubernetes API"},
	} {
		cs := startClusterSessionWith(t, acct, nil, func(a *Agent) { a.cfg.Proxy = c.proxy })
		cs.d.hello(t)
		cs.d.send(proxyRequest("r1", c.method, c.path, ""))
		head := nextProxy(t, cs.d, "r1")
		body := string(head.GetBody())
		for !head.GetEnd() {
			f := nextProxy(t, cs.d, "r1")
			body += string(f.GetBody())
			head.End = f.GetEnd()
		}
		if head.GetStatus() != c.status || !strings.Contains(body, c.says) {
			t.Errorf("%+v %s %s: %d %.300s, want %d saying %q", c.proxy, c.method, c.path, head.GetStatus(), body, c.status, c.says)
		}
		cs.stop()
	}
}

// A ProxyCancel right behind its request ends the request, however the
// two race: a cancelled watch never stays behind holding one of the
// agent's slots.
func TestAgentProxyCancelRightBehindTheRequest(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "agent-proxy-cancel"})
	acct := Account{Name: "acct", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"Namespace"}}
	cs := startClusterSessionWith(t, acct, nil, func(a *Agent) { a.cfg.Proxy = ProxyConfig{Enabled: true} })
	defer cs.stop()
	cs.d.hello(t)
	const n = 50
	for i := range n {
		id := fmt.Sprintf("w%d", i)
		cs.d.send(proxyRequest(id, "GET", "/api/v1/namespaces", "watch=1"))
		cs.d.send(&kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyCancel{ProxyCancel: &kubesvcv1.ProxyCancel{Id: id}}})
	}
	// A request after them is answered (they were all taken up), and
	// then none is left running.
	cs.d.send(proxyRequest("after", "GET", "/api/v1/namespaces/default", ""))
	if head := nextProxy(t, cs.d, "after"); head.GetStatus() != 200 {
		t.Fatalf("request after the cancelled ones: %v", head)
	}
	deadline := time.Now().Add(30 * time.Second)
	for cs.agent.stats.ProxyActive.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d cancelled watches still relayed after 30s", cs.agent.stats.ProxyActive.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Proxied answers do not wait for the control plane to acknowledge change
// batches: with every batch slot taken (a control plane that never acks,
// as one slow to persist), a proxied request is still answered.
func TestAgentProxyAnswersPassWaitingBatches(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "agent-proxy-prio"})
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	d := startControlPlaneDouble(t, doubleOptions{}) // acknowledges nothing
	acct := Account{Name: "acct", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"ConfigMap"}, Namespaces: []string{"default"}}
	c := startClusterSessionOn(t, d, acct, func(a *Agent) { a.cfg.Proxy = ProxyConfig{Enabled: true} })
	defer c.stop()
	d.hello(t)
	// Changes until the agent has every batch slot taken and more
	// changes queued behind them.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; d.batches.Load() < maxInflightBatches || c.agent.stats.Changes.Load() == 0 || i < 3*maxInflightBatches; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches sent, want %d", d.batches.Load(), maxInflightBatches)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fill-%d", i)}}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // one batch each, mostly
	}
	d.send(proxyRequest("r", "GET", "/api/v1/namespaces/default", ""))
	if head := nextProxy(t, d, "r"); head.GetStatus() != 200 {
		t.Fatalf("proxied request behind unacknowledged batches: %v", head)
	}
}
