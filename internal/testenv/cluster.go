package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure a Cluster. The zero value starts etcd and kube-apiserver.
type Options struct {
	// Name labels the cluster in its directory, kubeconfig context and
	// errors. Default "testenv".
	Name string
	// ControllerManager also starts kube-controller-manager, so that
	// Deployments get ReplicaSets, namespaces get service accounts, etc.
	ControllerManager bool
	// BaseDir is where the cluster directory is created. Default os.TempDir().
	BaseDir string
	// StartTimeout bounds the whole start. Default 60s.
	StartTimeout time.Duration
	// APIServerArgs are appended to kube-apiserver's flags (later flags
	// win), e.g. "--watch-cache=false" to reach etcd's compaction directly.
	APIServerArgs []string
}

// Cluster is a running Kubernetes control plane. Its methods are safe for
// concurrent use; Stop may be called more than once.
type Cluster struct {
	// Name is Options.Name.
	Name string
	// Dir holds the PKI, etcd data, logs and the kubeconfig; Stop removes it.
	Dir string
	// Host is the API server URL, https://127.0.0.1:PORT.
	Host string
	// KubeconfigPath is an admin kubeconfig for this cluster.
	KubeconfigPath string

	config *rest.Config
	pki    *pki

	mu    sync.Mutex // guards procs
	procs []*process // started order; stopped in reverse
	once  sync.Once
}

// Start starts a cluster and returns once the API server is ready (and, with
// ControllerManager, once controllers are running). On error nothing is left
// running and the directory is removed.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Name == "" {
		opts.Name = "testenv"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	bins := map[string]string{}
	need := []string{Etcd, KubeAPIServer}
	if opts.ControllerManager {
		need = append(need, KubeControllerManager)
	}
	for _, name := range need {
		p, err := BinaryPath(name)
		if err != nil {
			return nil, err
		}
		bins[name] = p
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	var lastErr error
	for range 3 {
		c, err := start(ctx, opts, bins)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, errPortConflict) {
			break
		}
	}
	return nil, fmt.Errorf("testenv: start cluster %q: %w", opts.Name, lastErr)
}

func start(ctx context.Context, opts Options, bins map[string]string) (_ *Cluster, err error) {
	sweepStale(opts.BaseDir)
	dir, err := os.MkdirTemp(opts.BaseDir, dirPrefix+opts.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	c := &Cluster{Name: opts.Name, Dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, fmt.Errorf("write owner file: %w", err)
	}
	pki, err := newPKI(dir)
	if err != nil {
		return nil, err
	}
	c.pki = pki
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.Host = "https://127.0.0.1:" + strconv.Itoa(ports[2])

	etcd, err := c.startProcess(Etcd, bins[Etcd],
		"--name=testenv",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testenv="+peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, etcd, func(ctx context.Context) bool {
		return httpOK(ctx, http.DefaultClient, clientURL+"/health")
	}); err != nil {
		return nil, err
	}

	apiserverArgs := []string{
		"--etcd-servers=" + clientURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--cert-dir=" + dir,
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPub,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
	apiserver, err := c.startProcess(KubeAPIServer, bins[KubeAPIServer], append(apiserverArgs, opts.APIServerArgs...)...)
	if err != nil {
		return nil, err
	}

	c.config = &rest.Config{
		Host: c.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
		QPS:   -1, // no client-side throttling against a private test server
		Burst: -1,
	}
	httpClient, err := rest.HTTPClientFor(c.config)
	if err != nil {
		return nil, fmt.Errorf("admin HTTP client: %w", err)
	}
	if err := waitFor(ctx, apiserver, func(ctx context.Context) bool {
		return httpOK(ctx, httpClient, c.Host+"/readyz")
	}); err != nil {
		return nil, err
	}

	c.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.KubeconfigPath, opts.Name, c.Host, pki); err != nil {
		return nil, err
	}

	if bins[KubeControllerManager] != "" {
		kcm, err := c.startProcess(KubeControllerManager, bins[KubeControllerManager],
			"--kubeconfig="+c.KubeconfigPath,
			"--secure-port=0",
			"--leader-elect=false",
			"--controllers=*",
			"--service-account-private-key-file="+pki.saKey,
			"--root-ca-file="+pki.caCert,
			"--use-service-account-credentials=false",
		)
		if err != nil {
			return nil, err
		}
		// The service-account controller creates "default" in every
		// namespace: once it has, the controllers are running.
		cs, err := kubernetes.NewForConfig(c.config)
		if err != nil {
			return nil, err
		}
		if err := waitFor(ctx, kcm, func(ctx context.Context) bool {
			_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil
		}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startProcess(name, path string, args ...string) (*process, error) {
	p, err := startProcess(c.Dir, name, path, args...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// waitFor polls ready until it is true, the process exits, or ctx ends.
func waitFor(ctx context.Context, p *process, ready func(context.Context) bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.done:
			if p.portConflict() {
				return fmt.Errorf("%w: %w", errPortConflict, p.failure())
			}
			return p.failure()
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w; last lines of %s:\n%s", p.name, ctx.Err(), p.logPath, p.logTail(25))
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func writeKubeconfig(path, name, host string, p *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin"}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// ServingCertFiles returns the paths of the API server's serving
// certificate and key. The API server reads them again when they change
// (within a minute): a test replacing them rotates its certificate.
func (c *Cluster) ServingCertFiles() (cert, key string) {
	return c.pki.servingCert, c.pki.servingKey
}

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// PIDs returns the process ids of the cluster's processes, for checks that
// nothing outlives the cluster.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := make([]int, 0, len(c.procs))
	for _, p := range c.procs {
		pids = append(pids, p.pid())
	}
	return pids
}

// Stop stops the processes (newest first, SIGTERM then SIGKILL after a few
// seconds), waits for them to exit and removes the directory. It returns
// the error of removing the directory, if any.
func (c *Cluster) Stop() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		procs := c.procs
		c.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop(5 * time.Second)
		}
		if c.Dir != "" {
			err = os.RemoveAll(c.Dir)
		}
	})
	return err
}
