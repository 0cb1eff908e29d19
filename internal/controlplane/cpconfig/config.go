package cpconfig

import (
	"io"
	"log/slog"
	"time"
)

// Defaults. docs/controlplane-config.md lists them with their keys.
const (
	DefaultHTTPPort                = 7002
	DefaultGRPCPort                = 9091
	DefaultMaxInboundMessageSize   = 4 << 20 // 4MB, as documented
	DefaultKeepaliveMinTime        = 5 * time.Second
	DefaultAgentTimeout            = 90 * time.Second
	DefaultHeartbeatPeriod         = 60 // in DefaultHeartbeatPeriodUnit
	DefaultHeartbeatPeriodUnit     = "SECONDS"
	DefaultOperationWait           = 30000 * time.Millisecond
	DefaultOnDemandQuickWait       = 10000 * time.Millisecond
	DefaultAccountCleanupFrequency = 600 * time.Second
	DefaultEventsCleanupFrequency  = 7200 * time.Second
	DefaultRetryFrequency          = 5 * time.Second
	DefaultMaxRetries              = 3
	// DefaultScanFrequency and DefaultScanBatchSize are the values the
	// Scale Agent documents (service-config-options.csv).
	DefaultScanFrequency         = 120 * time.Second
	DefaultScanBatchSize         = 572
	DefaultHTTPPortName          = "http"
	DefaultServiceNamePrefix     = "spin-clouddriver"
	DefaultOperationHistoryWeeks = 1
	DefaultSQLitePath            = "kubesvc.db"

	// MinMaxInboundMessageSize is the smallest accepted
	// kubesvc.grpc.server.maxInboundMessageSize (as controlplane.Config).
	MinMaxInboundMessageSize = 64 << 10
)

// DefaultCacheKinds is the documented default of kubesvc.cache.cacheKinds
// (the plugin's cacheDefaults).
var DefaultCacheKinds = []string{"ReplicaSet", "Service", "Ingress", "DaemonSet", "Deployment", "Pod",
	"StatefulSet", "Job", "CronJob", "NetworkPolicy", "Namespace", "CustomResourceDefinition"}

// Config is the validated control-plane configuration with defaults
// applied. Build it with New or Load; the zero value is not meaningful.
type Config struct {
	// Sources are the files the configuration was read from, in order.
	Sources []string

	// ID names this replica (kubesvc.id). Default: the host name.
	ID string
	// AgentTimeout drops an agent session that sent nothing for this long
	// (kubesvc.agentTimeoutSeconds).
	AgentTimeout time.Duration

	Server          Server
	GRPC            GRPC
	Heartbeat       Heartbeat
	Cache           Cache
	DynamicAccounts DynamicAccounts
	Cluster         Cluster
	// OperationHistoryRetention is how long rows of kubesvc_ops_history are
	// kept (kubesvc.jobs.operation-history.purge.weeks).
	OperationHistoryRetention time.Duration
	// Proxy serves the Kubernetes API proxy through the agents
	// (kubesvc.proxy.enabled, ours).
	Proxy bool
	// ProxySubjects, when set, are the subject filters a REST client
	// certificate must match to use the proxy (kubesvc.proxy.x509.filters).
	ProxySubjects []string
	// LoadBalancer names the account load-balancing algorithm
	// (kubesvc.loadBalancer); empty: the default.
	LoadBalancer string
	SQL          SQL
	Logging      Logging

	// Unsupported lists the keys set in the files that this build does not
	// act on (yet): documented keys it does not model, such as
	// kubesvc.v2-cache-eviction.millis, and modelled keys whose feature is
	// not built, such as kubesvc.cache.cacheKinds. A key whose
	// value asks for what the build does anyway (kubesvc.cluster: local) is
	// not listed. Callers should log them.
	Unsupported []string
}

// Server is the REST API's listener (server.*).
type Server struct {
	Address string // empty: all interfaces
	Port    int
	SSL     SSL
}

// Client-certificate policies of the REST API (server.ssl.client-auth),
// Spring Boot's names.
const (
	SSLClientAuthNone = "none"
	SSLClientAuthWant = "want"
	SSLClientAuthNeed = "need"
)

// SSL is TLS on the REST API (server.ssl.*). File references keep their
// documented form; Config.RESTTLS reads them.
type SSL struct {
	Enabled                bool
	Certificate            string
	CertificatePrivateKey  string
	KeyPassword            string
	TrustCertificate       string
	ClientAuth             string // none, want or need
	MinVersion, MaxVersion uint16
	CipherSuites           []uint16
}

// GRPC is the agents' endpoint (kubesvc.grpc.*).
type GRPC struct {
	Address string // empty ("*" in the file): all interfaces
	Port    int
	// MaxInboundMessageSize caps one message from an agent, in bytes. The
	// control plane announces it to agents, which stop filling a batch of
	// changes at half of it (at most 4MiB): a batch fits as long as no single
	// object is larger than the other half.
	MaxInboundMessageSize int
	HealthServiceEnabled  bool
	Keepalive             Keepalive
	Security              Security
	X509                  X509
}

// Keepalive configures gRPC keepalive on the server side.
type Keepalive struct {
	// MinTime is the shortest ping interval accepted from agents
	// (kubesvc.grpc.server.keepalive.minTimeSeconds).
	MinTime time.Duration
	// Time and Timeout: the server pings an idle agent every Time and drops
	// it after Timeout without an answer
	// (kubesvc.grpc.server.security.keepAliveHeartbeatSeconds and
	// KeepAliveTimeOutSeconds). 0: the server's defaults (30s, 20s).
	Time, Timeout time.Duration
}

// ClientAuth is the client-certificate policy of gRPC TLS.
type ClientAuth string

// Client-certificate policies.
const (
	ClientAuthNone     ClientAuth = "NONE"
	ClientAuthOptional ClientAuth = "OPTIONAL"
	ClientAuthRequire  ClientAuth = "REQUIRE"
)

// Security is gRPC TLS (kubesvc.grpc.server.security.*). File references
// keep the documented form (file:/path); Config.ServerTLS reads them.
type Security struct {
	Enabled             bool
	CertificateChain    string
	PrivateKey          string
	PrivateKeyPassword  string
	ClientAuth          ClientAuth
	TrustCertCollection string
	// MinVersion and MaxVersion come from protocols (0: the defaults,
	// TLS 1.2 to 1.3); CipherSuites from ciphers (nil: Go's defaults).
	MinVersion, MaxVersion uint16
	CipherSuites           []uint16
}

// X509 is client-certificate subject filtering (kubesvc.grpc.auth.x509.*).
// Filters are regular expressions (Go syntax), validated.
type X509 struct {
	Enabled bool
	Filters []string
}

// Heartbeat is how often a replica marks its account assignments as recent
// (kubesvc.heartbeat.*).
type Heartbeat struct {
	Enabled      bool
	InitialDelay time.Duration
	Period       time.Duration
}

// Cache is kubesvc.cache.*.
type Cache struct {
	OperationWait               time.Duration // operationWaitMs
	OnDemandQuickWait           time.Duration // onDemandQuickWaitMs
	AccountCleanupFrequency     time.Duration // accountCleanupFrequencySeconds
	EventsCleanupFrequency      time.Duration // eventsCleanupFrequencySeconds
	NamespaceExpiry             time.Duration // namespaceExpiryMinutes; 0: disabled
	CleanDataWithUnusedAccounts bool
	CacheKinds                  []string
}

// DynamicAccounts is kubesvc.dynamicAccounts.*.
type DynamicAccounts struct {
	Enabled            bool
	RetryFrequency     time.Duration
	MaxRetries         int
	ScanFrequency      time.Duration // default DefaultScanFrequency
	ScanBatchSize      int           // default DefaultScanBatchSize
	NamePatterns       []string      // regular expressions (Go syntax), validated; set: scan
	InterceptorEnabled bool
	// ClouddriverURL is where the interceptor proxies requests for
	// accounts other than Kubernetes ones; empty: it stores them itself.
	ClouddriverURL string
	// ClouddriverDatabase holds Clouddriver's accounts tables: the
	// control plane's own database (SQL) unless configured.
	ClouddriverDatabase SQL
	// EncryptionKey and EncryptionKeyFile: the key sealing inline kubeconfig
	// contents (see internal/credentials.ParseKey); both empty: inline
	// contents are refused.
	EncryptionKey     string
	EncryptionKeyFile string
}

// ClusterMode is how replicas find each other (kubesvc.cluster).
type ClusterMode string

// Cluster modes.
const (
	ClusterLocal      ClusterMode = "local"      // one replica, no coordination
	ClusterKubernetes ClusterMode = "kubernetes" // peers from Kubernetes Endpoints
	ClusterStatic     ClusterMode = "static"     // a fixed list of peers
)

// Cluster is kubesvc.cluster and kubesvc.cluster-kubernetes.*.
type Cluster struct {
	Mode       ClusterMode
	Kubernetes ClusterKubernetesConfig
	// Static is kubesvc.cluster-static.peers (mode static).
	Static []Peer
	// PeerSecret is the content of kubesvc.peerSecretFile (trimmed);
	// empty: the peer endpoints are open.
	PeerSecret string
	// BaseURL is kubesvc.baseUrl: this replica's REST API for its peers;
	// empty: http(s)://<POD_IP or host name>:<server.port>.
	BaseURL string
	// PeerCAFile and PeerServerName are kubesvc.peerTls.*: the bundle the
	// other replicas' REST certificates are verified against (empty:
	// server.ssl.trust-certificate, else the system's roots) and the name
	// expected in them (empty: the host of their URL).
	PeerCAFile, PeerServerName string
}

// Peer is one replica of a static cluster.
type Peer struct {
	ID, BaseURL string
}

// ClusterKubernetesConfig is kubesvc.cluster-kubernetes.*.
type ClusterKubernetesConfig struct {
	KubeconfigFile               string // empty: the pod's service account
	VerifySSL                    bool
	Namespace                    string // empty: the pod's namespace
	HTTPPortName                 string
	ClouddriverServiceNamePrefix string
}

// Driver is an SQL database kind (sql.driver).
type Driver string

// SQL drivers.
const (
	DriverSQLite   Driver = "sqlite"
	DriverMySQL    Driver = "mysql"
	DriverPostgres Driver = "postgres"
)

// SQL is the database (sql.*). Path applies to SQLite, DSN to MySQL and
// PostgreSQL; the other one is ignored.
type SQL struct {
	Driver Driver
	Path   string
	DSN    string
}

// LogFormat is text or json.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Logging is logging.*.
type Logging struct {
	Level  slog.Level // trace is slog.LevelDebug-4
	Format LogFormat
}

// NewHandler returns a slog handler writing to w in the configured format
// and at the configured level.
func (l Logging) NewHandler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == LogJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Load reads the files (later files override earlier ones) and returns the
// validated Config. With no files it returns the defaults.
func Load(paths ...string) (*Config, error) {
	f, err := Read(paths...)
	if err != nil {
		return nil, err
	}
	return New(f)
}
