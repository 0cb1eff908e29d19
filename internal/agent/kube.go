package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/credentials"
)

// restConfig builds the client configuration of an account: in-cluster
// service account, kubeconfig file, or kubeconfig contents. The clients
// built from an account's kubeconfig file follow the file, and those of
// the in-cluster service account its CA file: see followConfig. A
// kubeconfig file that names another API server is only logged: the
// agent's clients are built by Agent.clientConfig, which restarts the
// account then.
func restConfig(a Account, log *slog.Logger) (*rest.Config, error) {
	cfg, _, err := followedConfig(a, log, nil)
	return cfg, err
}

// clientConfig is restConfig for the agent's clients of acct: a kubeconfig
// file that names another API server restarts the account. src is what
// the clients follow (nil: nothing), for the account to check it
// periodically (configSource.refresh).
func (ag *Agent) clientConfig(acct Account, log *slog.Logger) (cfg *rest.Config, src *configSource, err error) {
	return followedConfig(acct, log, ag.serverMoved)
}

func followedConfig(a Account, log *slog.Logger, moved serverMoved) (*rest.Config, *configSource, error) {
	cfg, err := loadConfig(a)
	if err != nil {
		return nil, nil, err
	}
	var src *configSource
	if a.ServiceAccount || (len(a.Kubeconfig) == 0 && a.KubeconfigFile != "") {
		src = followConfig(a, cfg, log, moved)
	}
	return cfg, src, nil
}

// The in-cluster service account's files, as rest.InClusterConfig reads
// them.
const (
	serviceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	serviceAccountCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// inClusterFiles is where an in-cluster configuration is read from.
type inClusterFiles struct {
	// host is the API server's URL; "": https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
	host              string
	tokenFile, caFile string
}

// inClusterFiles returns where a's in-cluster configuration is read from:
// the service account's files, unless a test says otherwise.
func (a Account) inClusterFiles() inClusterFiles {
	if a.inCluster != nil {
		return *a.inCluster
	}
	return inClusterFiles{tokenFile: serviceAccountTokenFile, caFile: serviceAccountCAFile}
}

// inClusterConfig is rest.InClusterConfig reading f: the API server's
// address from the environment, the token file (client-go reads it again
// every minute) and the CA file, named when it holds certificates.
func inClusterConfig(f inClusterFiles) (*rest.Config, error) {
	host := f.host
	if host == "" {
		h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if h == "" || p == "" {
			return nil, rest.ErrNotInCluster
		}
		host = "https://" + net.JoinHostPort(h, p)
	}
	token, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return nil, err
	}
	cfg := &rest.Config{Host: host, BearerToken: string(token), BearerTokenFile: f.tokenFile}
	if _, err := certutil.NewPool(f.caFile); err == nil {
		cfg.TLSClientConfig.CAFile = f.caFile
	}
	return cfg, nil
}

// loadConfig builds the client configuration of an account as its
// credential source says now.
func loadConfig(a Account) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	overrides := &clientcmd.ConfigOverrides{CurrentContext: a.Context}
	switch {
	case a.ServiceAccount:
		cfg, err = inClusterConfig(a.inClusterFiles())
	case len(a.Kubeconfig) > 0:
		raw, lerr := clientcmd.Load(a.Kubeconfig)
		if lerr != nil {
			return nil, fmt.Errorf("account %s: kubeconfig: %w: %s", a.Name, credentials.ErrInvalidKubeconfig, credentials.DescribeLoadError(lerr))
		}
		cfg, err = clientcmd.NewNonInteractiveClientConfig(*raw, a.Context, overrides, nil).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("account %s: kubeconfig: %w", a.Name, credentials.ConfigError(a.Kubeconfig, a.Context, err))
		}
	case a.KubeconfigFile != "":
		if cfg, err = fileConfig(a.KubeconfigFile, a.Context, overrides); err != nil {
			return nil, fmt.Errorf("account %s: %w", a.Name, err)
		}
	default:
		return nil, fmt.Errorf("account %s: neither kubeconfigFile nor serviceAccount is set", a.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("account %s: client configuration: %w", a.Name, err)
	}
	cfg = rest.CopyConfig(cfg)
	if a.Insecure {
		cfg.TLSClientConfig.Insecure = true
		cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile = nil, ""
	}
	// The agent paces itself with task budgets; client-side throttling
	// would only add latency to the watch restarts and list pages.
	cfg.QPS, cfg.Burst = -1, -1
	cfg.UserAgent = "kubesvc-agent"
	// Deprecation warnings (v1 Endpoints, ...) concern whoever uses those
	// APIs, not the agent that mirrors them.
	cfg.WarningHandler = rest.NoWarnings{}
	if a.NoProxy {
		cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	}
	// Certificates and keys that do not load are said now, naming the
	// account, its kubeconfig and the key to fix (never their content).
	if _, err := rest.TLSConfigFor(cfg); err != nil {
		return nil, tlsProblem(a, fmt.Errorf("TLS configuration: %w", err))
	}
	return cfg, nil
}

// source names where an account's credentials come from, for messages.
func (a Account) source() string {
	switch {
	case a.ServiceAccount:
		return "the agent's service account"
	case len(a.Kubeconfig) > 0:
		return "its kubeconfig"
	default:
		return "kubeconfig file " + a.KubeconfigFile
	}
}

// tlsProblem completes an error of the TLS settings or handshake with the
// account, its kubeconfig and the kubeconfig key to fix.
func tlsProblem(a Account, err error) error {
	msg := err.Error()
	var (
		uae x509.UnknownAuthorityError
		cve *tls.CertificateVerificationError
		hne x509.HostnameError
	)
	key := ""
	switch {
	case errors.As(err, &hne):
		key = "server (the API server's certificate does not name this address), or tls-server-name"
	case errors.As(err, &uae), errors.As(err, &cve):
		key = "certificate-authority-data (or certificate-authority): it does not hold the CA that signed the API server's certificate"
		if a.ServiceAccount {
			key = "the service account's ca.crt: it does not hold the CA that signed the API server's certificate"
		}
	case strings.Contains(msg, "certificate input"):
		key = "client-certificate-data (or client-certificate): not a PEM certificate"
	case strings.Contains(msg, "key input"), strings.Contains(msg, "private key"):
		key = "client-key-data (or client-key): not a PEM private key matching client-certificate-data"
	case strings.Contains(msg, "root certificates"), strings.Contains(msg, "CA"):
		key = "certificate-authority-data (or certificate-authority): not a PEM certificate"
	case strings.HasPrefix(msg, "TLS configuration"):
		key = "certificate-authority-data, client-certificate-data and client-key-data"
	default:
		return err // not a TLS problem: a connection refused names the host
	}
	return fmt.Errorf("account %s (%s): %w; check %s", a.Name, a.source(), err, key)
}

// fileConfig builds the client configuration of a kubeconfig file. The
// file is loaded first on its own: clientcmd's load errors quote the
// file's content (an anchor's or a kind's name, a map key, a token), and
// they reach the agent's log, the account's status and the control
// plane's database; a file that does not load is reported by its path and
// the kind of problem only.
func fileConfig(path, context string, overrides *clientcmd.ConfigOverrides) (*rest.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig file: %w", err) // *fs.PathError: names the file
	}
	if _, err := clientcmd.Load(data); err != nil {
		return nil, fmt.Errorf("kubeconfig file %s: %w: %s", path, credentials.ErrInvalidKubeconfig, credentials.DescribeLoadError(err))
	}
	// The loading rules resolve paths in the file (certificate files, ...)
	// relative to it, as before.
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig file %s: %w", path, credentials.ConfigError(data, context, err))
	}
	return cfg, nil
}

// probe returns what the agent reports about an account's API server: host,
// serving-certificate fingerprint and Kubernetes version.
func probe(ctx context.Context, a Account, cfg *rest.Config) (*kubesvcv1.AccountInfo, error) {
	info := &kubesvcv1.AccountInfo{Name: a.Name, ApiHost: cfg.Host}
	fp, err := certFingerprint(ctx, cfg)
	if err != nil {
		return info, tlsProblem(a, err)
	}
	info.CertFingerprint = fp
	dc, err := discovery.NewDiscoveryClientForConfig(withTimeout(cfg, 10*time.Second))
	if err != nil {
		return info, fmt.Errorf("discovery client: %w", err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return info, fmt.Errorf("server version of %s: %w", cfg.Host, err)
	}
	info.KubernetesVersion = v.GitVersion
	return info, nil
}

func withTimeout(cfg *rest.Config, d time.Duration) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Timeout = d
	return c
}

// certFingerprint returns the SHA-256 of the API server's leaf certificate as
// colon-separated upper-case hex, or "" for a plain-HTTP server.
func certFingerprint(ctx context.Context, cfg *rest.Config) (string, error) {
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Host == "" {
		// rest.Config allows a bare host:port.
		u, err = url.Parse("https://" + cfg.Host)
		if err != nil {
			return "", fmt.Errorf("API server address %q: %w", cfg.Host, err)
		}
	}
	if u.Scheme == "http" {
		return "", nil
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return "", fmt.Errorf("TLS configuration: %w", err)
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg = tlsCfg.Clone()
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = u.Hostname()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: tlsCfg}).DialContext(ctx, "tcp", host)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return "", fmt.Errorf("connect to the API server %s: %w", host, err)
		}
		return "", fmt.Errorf("TLS handshake with %s: %w", host, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", fmt.Errorf("%s presented no certificate", host)
	}
	sum := sha256.Sum256(certs[0].Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String(), nil
}
