package clusterharness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Options describe the shared parts: the database, the Kubernetes cluster
// (accounts and peer discovery), the binaries.
type Options struct {
	// Driver and DSN of the shared database (mysql or postgres). A DSN
	// reaching the server over TCP on the host (DBAddr) is rewritten for
	// the replicas to a proxy on their veth; a unix socket DSN is used as
	// is (sockets cross network namespaces, so a cut leaves it working).
	Driver, DSN, DBAddr string
	// Kubeconfig of the cluster (admin): replicas watch EndpointSlices
	// with it, agents serve it as their accounts.
	Kubeconfig string
	// Namespace of the replicas' EndpointSlices. Default "spinnaker".
	Namespace string
	// Bin holds the controlplane and agent binaries (Build).
	Bin string
	// Dir is the work directory (configurations, logs).
	Dir string
	// HeartbeatSeconds is kubesvc.heartbeat.period. Default 1.
	HeartbeatSeconds int
	// OperationWaitMs is kubesvc.cache.operationWaitMs. Default 15000.
	OperationWaitMs int
	// AgentBackoff is the agents' clouddriver.backoff.baseDelay; zero:
	// the documented default (1 s).
	AgentBackoff time.Duration
	// Logf receives progress lines (t.Logf).
	Logf func(format string, args ...any)
}

// Harness is a running cluster.
type Harness struct {
	opts Options
	kube kubernetes.Interface
	lb   *Proxy
	net  *Network

	mu       sync.Mutex // guards replicas and agents
	replicas []*Replica
	agents   []*Agent
}

// Build compiles the controlplane and agent binaries into dir.
func Build(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/controlplane", "./cmd/agent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	return nil
}

// New prepares the namespace for EndpointSlices; replicas and agents come
// with StartReplica and StartAgent.
func New(ctx context.Context, opts Options) (*Harness, error) {
	if opts.Namespace == "" {
		opts.Namespace = "spinnaker"
	}
	if opts.HeartbeatSeconds == 0 {
		opts.HeartbeatSeconds = 1
	}
	if opts.OperationWaitMs == 0 {
		opts.OperationWaitMs = 15000
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 2000, 4000 // the tests' and benchmark's writers
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	nw, err := NewNetwork()
	if err != nil {
		return nil, err
	}
	return &Harness{opts: opts, kube: cs, net: nw}, nil
}

// Kube is a client of the cluster.
func (h *Harness) Kube() kubernetes.Interface { return h.kube }

// Replica is one controlplane process in its network namespace.
type Replica struct {
	ID  string
	NS  *Netns
	cmd *exec.Cmd
	// URL is its REST API, GRPC its agent endpoint, both reachable from
	// the host.
	URL, GRPC string
	proxies   []*Proxy
	exited    chan struct{}
}

// PeerSecret is the replicas' kubesvc.peerSecretFile content.
const PeerSecret = "harness-peer-secret-0123456789"

// Ports inside each replica's namespace.
const (
	replicaHTTPPort = 7002
	replicaGRPCPort = 9091
)

// StartReplica starts a replica, registers it in an EndpointSlice of the
// spin-clouddriver Service and waits for its REST API.
func (h *Harness) StartReplica(ctx context.Context, id string) (*Replica, error) {
	ns, err := h.net.Add()
	if err != nil {
		return nil, err
	}
	r := &Replica{ID: id, NS: ns, exited: make(chan struct{}),
		URL:  "http://" + net.JoinHostPort(ns.NSIP, fmt.Sprint(replicaHTTPPort)),
		GRPC: net.JoinHostPort(ns.NSIP, fmt.Sprint(replicaGRPCPort))}
	if err := h.startReplica(ctx, r); err != nil {
		// Nothing of a replica that did not come up stays behind.
		if r.cmd != nil && r.cmd.Process != nil {
			_ = r.Kill()
		}
		for _, p := range r.proxies {
			_ = p.Close()
		}
		_ = ns.Close()
		return nil, err
	}
	h.mu.Lock()
	h.replicas = append(h.replicas, r)
	h.mu.Unlock()
	if err := h.register(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (h *Harness) startReplica(ctx context.Context, r *Replica) error {
	dir := filepath.Join(h.opts.Dir, r.ID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	// The API server and a TCP database are reached through proxies on
	// the host end of the veth, so a cut stops them too.
	kubeProxy, kubeconfig, err := h.replicaKubeconfig(r, dir)
	if err != nil {
		return err
	}
	r.proxies = append(r.proxies, kubeProxy)
	dsn := h.opts.DSN
	if h.opts.DBAddr != "" && strings.Contains(dsn, h.opts.DBAddr) {
		dbProxy, err := NewProxy(net.JoinHostPort(r.NS.HostIP, "0"), h.opts.DBAddr)
		if err != nil {
			return err
		}
		r.proxies = append(r.proxies, dbProxy)
		dsn = strings.Replace(dsn, h.opts.DBAddr, dbProxy.Addr(), 1)
	}
	secret := filepath.Join(h.opts.Dir, "peer-secret")
	if err := os.WriteFile(secret, []byte(PeerSecret+"\n"), 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`server: {address: 0.0.0.0, port: %d}
kubesvc:
  id: %s
  peerSecretFile: %q
  baseUrl: %s
  agentTimeoutSeconds: 10
  grpc:
    server:
      port: %d
      keepalive: {minTimeSeconds: 1}
      security: {keepAliveHeartbeatSeconds: 1, KeepAliveTimeOutSeconds: 2}
  heartbeat: {period: %d}
  cache: {operationWaitMs: %d}
  dynamicAccounts: {enabled: true}
  cluster: kubernetes
  cluster-kubernetes: {kubeconfigFile: %q, verifySsl: false, namespace: %s}
sql: {driver: %s, dsn: %q}
logging: {level: info}
`, replicaHTTPPort, r.ID, secret, r.URL, replicaGRPCPort, h.opts.HeartbeatSeconds, h.opts.OperationWaitMs, kubeconfig, h.opts.Namespace, h.opts.Driver, dsn)
	path := filepath.Join(dir, "controlplane.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "controlplane.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	r.cmd = r.NS.Command(filepath.Join(h.opts.Bin, "controlplane"), "--config", path)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	// The waiter captures this run's cmd and channel: a later Restart
	// replaces r's.
	cmd, exited := r.cmd, make(chan struct{})
	r.exited = exited
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	return waitHTTP(ctx, r.URL+"/health", 60*time.Second)
}

// replicaKubeconfig writes a kubeconfig for r reaching the API server
// through a proxy on its veth's host end.
func (h *Harness) replicaKubeconfig(r *Replica, dir string) (*Proxy, string, error) {
	cfg, err := clientcmd.LoadFromFile(h.opts.Kubeconfig)
	if err != nil {
		return nil, "", err
	}
	var p *Proxy
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			return nil, "", err
		}
		if p == nil {
			if p, err = NewProxy(net.JoinHostPort(r.NS.HostIP, "0"), u.Host); err != nil {
				return nil, "", err
			}
		}
		u.Host = p.Addr()
		c.Server = u.String()
	}
	path := filepath.Join(dir, "kubeconfig")
	return p, path, clientcmd.WriteToFile(*cfg, path)
}

// register publishes r as an endpoint of the spin-clouddriver Service.
func (h *Harness) register(ctx context.Context, r *Replica) error {
	port, name := int32(replicaHTTPPort), "http"
	tcp := corev1.ProtocolTCP
	ready := true
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "spin-clouddriver-" + r.ID, Labels: map[string]string{
			discoveryv1.LabelServiceName: "spin-clouddriver", discoveryv1.LabelManagedBy: "kubesvc-clusterharness",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &tcp}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{r.NS.NSIP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: r.ID, Namespace: h.opts.Namespace},
		}},
	}
	_, err := h.kube.DiscoveryV1().EndpointSlices(h.opts.Namespace).Create(ctx, es, metav1.CreateOptions{})
	return err
}

// Kill sends SIGKILL to the replica and waits for it to exit.
func (r *Replica) Kill() error {
	if r.cmd.Process == nil {
		return errors.New("not started")
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-r.exited
	return nil
}

// Restart starts a killed replica again in the same namespace.
func (h *Harness) Restart(ctx context.Context, r *Replica) error {
	for _, p := range r.proxies {
		_ = p.Close()
	}
	r.proxies = nil
	return h.startReplica(ctx, r)
}

// Running reports whether the replica's process is alive.
func (r *Replica) Running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// LB returns the agents' endpoint: a proxy over every replica's gRPC port,
// created on first use with the replicas started so far.
func (h *Harness) LB() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lb == nil {
		var targets []string
		for _, r := range h.replicas {
			targets = append(targets, r.GRPC)
		}
		lb, err := NewProxy("127.0.0.1:0", targets...)
		if err != nil {
			return "", err
		}
		h.lb = lb
	}
	return h.lb.Addr(), nil
}

// Close stops every process and removes the namespaces.
func (h *Harness) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.agents {
		_ = a.Kill()
		a.release()
	}
	for _, r := range h.replicas {
		_ = r.Kill()
		for _, p := range r.proxies {
			_ = p.Close()
		}
		_ = r.NS.Close()
	}
	if h.lb != nil {
		_ = h.lb.Close()
	}
	_ = h.net.Close()
}

func waitHTTP(ctx context.Context, u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not answering after %s: %v", u, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// GetJSON decodes GET u into out.
func GetJSON(ctx context.Context, u string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// PostJSON posts body to u and decodes the answer into out (nil: ignore);
// it fails on a non-2xx answer.
func PostJSON(ctx context.Context, u string, body, out any) (int, error) {
	return sendJSON(ctx, http.MethodPost, u, body, out)
}

// PatchJSON sends PATCH u with body; it fails on a non-2xx answer.
func PatchJSON(ctx context.Context, u string, body any) (int, error) {
	return sendJSON(ctx, http.MethodPatch, u, body, nil)
}

func sendJSON(ctx context.Context, method, u string, body, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %v: %s", method, u, err, data)
		}
	}
	return resp.StatusCode, nil
}
