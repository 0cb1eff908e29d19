package config

import (
	"log/slog"
	"time"
)

// Defaults. docs/agent-config.md lists them with their keys.
const (
	defaultGRPC                    = "spin-clouddriver-grpc:9091"
	defaultInsecure                = true
	defaultKeepAliveHeartbeat      = 20 * time.Second
	defaultBackoffBaseDelay        = time.Second
	defaultBackoffMultiplier       = 1.6
	defaultBackoffJitter           = 0.2
	defaultBackoffMaxDelay         = 120 * time.Second
	defaultRetriesEnabled          = true
	defaultRetriesMax              = 3
	defaultRetriesBackOff          = 3000 * time.Millisecond
	defaultReconnectTimeout        = 5000 * time.Millisecond
	defaultMaxResumableResourceAge = 300000 * time.Millisecond
	defaultTotalBudget             = 32
	defaultBudgetPerAccount        = 8
	defaultServerPort              = 8082
	defaultPrometheusPort          = 8008
	defaultPprofPort               = 6060
	defaultLogFormat               = "text"
	defaultLogLevel                = "info"
	defaultDynamicAccountsEnabled  = true
)

// Config is the validated agent configuration with defaults applied. Build
// it with New or Load; the zero value is not meaningful.
type Config struct {
	// Sources are the files the configuration was read from, in order.
	Sources []string

	Agent       Agent
	Clouddriver Clouddriver
	Kubernetes  Kubernetes
	Tasks       Tasks
	Server      Server
	Logging     Logging
	Prometheus  Prometheus
	Pprof       Pprof

	// Timeout bounds each request to the control plane (timeoutSeconds); 0 means none.
	Timeout time.Duration
	// DynamicAccountsEnabled lets the control plane add and remove accounts at run time.
	DynamicAccountsEnabled bool

	// Unsupported lists the keys present in the files that the Armory agent
	// documents but this agent ignores, such as logging.maxSizeMb. Callers
	// should log them.
	Unsupported []string
}

// Agent is this agent's identity. Empty values are derived by the caller
// (id from the pod name, zone id from Deployment name and namespace).
type Agent struct {
	ID     string // agent.id
	ZoneID string // agent.zoneId
}

// Clouddriver is the connection to the control plane (clouddriver.*).
type Clouddriver struct {
	Address            string        // clouddriver.grpc, host:port
	Insecure           bool          // plaintext instead of TLS
	NoProxy            bool          // ignore HTTP(S)_PROXY for this connection
	KeepAliveHeartbeat time.Duration // keepalive ping interval; 0: no pings
	KeepAliveTimeout   time.Duration // wait for a ping ack; 0: the gRPC default
	KeepAliveOperation time.Duration // reconnect after this long without operations; 0: never
	Backoff            Backoff
	ResponseRetries    Retries
	TLS                TLS
	Auth               Auth
}

// Backoff is the reconnect backoff (clouddriver.backoff.*), as in gRPC's backoff.Config.
type Backoff struct {
	BaseDelay  time.Duration
	Multiplier float64
	Jitter     float64
	MaxDelay   time.Duration
}

// Retries configures retrying a failed request or response.
type Retries struct {
	Enabled    bool
	MaxRetries int
	BackOff    time.Duration
}

// TLS is clouddriver.tls.*, used when Insecure is false.
type TLS struct {
	ServerName            string
	InsecureSkipVerify    bool
	ClientCertFile        string
	ClientKeyFile         string
	ClientKeyFilePassword string
	CACertFile            string
}

// Auth is clouddriver.auth.*: a static bearer token or a command printing one.
type Auth struct {
	Token        string
	TokenCommand TokenCommand
}

// TokenCommand runs Command with Args every RefreshInterval; its output is
// the token (Format "raw") or a JSON object with a token attribute ("json").
type TokenCommand struct {
	Command         string
	Args            []string
	Format          string // "json" or "raw"; "json" when Command is set and format is not
	RefreshInterval time.Duration
}

// Kubernetes is the kubernetes.* section.
type Kubernetes struct {
	Accounts         []Account
	NoProxy          bool
	ReconnectTimeout time.Duration
	CacheGroupSize   int           // accounts per start-up group; 0: no grouping
	CacheGroupDelay  time.Duration // pause between start-up groups
	Retries          KubeRetries
	ServerSideApply  ServerSideApply
	Proxy            KubeProxy
}

// KubeProxy is kubernetes.proxy.*: whether the agent relays the control
// plane's Kubernetes API requests (Enabled), and only reads (ReadOnly,
// default true).
type KubeProxy struct {
	Enabled, ReadOnly bool
}

// KubeRetries is kubernetes.retries.*: retrying failed Kubernetes API requests.
type KubeRetries struct {
	Enabled         bool
	MaxRetries      int
	BackOff         time.Duration
	RetryAnyError   bool
	RetryableErrors []string // substrings of retryable error messages
}

// SSAMode is a server-side-apply policy.
type SSAMode string

// Server-side-apply policies.
const (
	SSAAllowed SSAMode = "allowed"
	SSAAlways  SSAMode = "always"
	SSANever   SSAMode = "never"
)

// ServerSideApply is kubernetes.serverSideApply.*.
type ServerSideApply struct {
	// Enabled is "" when not set: server-side apply unless an object's
	// annotation asks for client-side apply.
	Enabled            SSAMode
	ClearManagedFields SSAMode
	ManifestDefaults   SSAMode
	Kinds              []SSAKind
}

// SSAKind overrides the server-side-apply policies for one kind.
type SSAKind struct {
	Kind string
	// Enabled is "" when not set: the global policy applies.
	Enabled            SSAMode
	ClearManagedFields SSAMode
	ManifestDefaults   SSAMode
}

// Account is one statically configured Kubernetes account. Exactly one of
// KubeconfigFile and ServiceAccount is set. Empty lists are nil.
type Account struct {
	Name                      string
	KubeconfigFile            string
	Context                   string
	ServiceAccount            bool
	Namespaces                []string
	OmitNamespaces            []string
	Kinds                     []string
	OmitKinds                 []string
	OnlyNamespacedResources   bool
	MaxResumableResourceAge   time.Duration // 0: never resume, always list
	Insecure                  bool
	Metrics                   bool
	NoProxy                   bool
	CustomResourceDefinitions []CRD
	// Permissions maps "READ" and "WRITE" to role names.
	Permissions map[string][]string
}

// Scope is the scope of a custom resource.
type Scope string

// CRD scopes.
const (
	ScopeNamespaced Scope = "Namespaced"
	ScopeCluster    Scope = "Cluster"
)

// CRD declares a custom resource kind (Kind.group) to expose although its
// CustomResourceDefinition cannot be read (onlyNamespacedResources).
type CRD struct {
	Kind  string
	Scope Scope
}

// Tasks bounds how many list/watch-start tasks run at once; 0 means no limit.
type Tasks struct {
	TotalBudget      int
	BudgetPerAccount int
}

// Server is the health endpoint.
type Server struct {
	Host string // empty: all interfaces
	Port int
}

// Logging is logging.*.
type Logging struct {
	File   string // empty: standard output
	Format string // "text" or "json"
	Level  string // panic, fatal, error, warn, info, debug or trace (lower case)
}

// SlogLevel maps Level to a slog level: trace is below debug, fatal and
// panic are above error.
func (l Logging) SlogLevel() slog.Level {
	switch l.Level {
	case "trace":
		return slog.LevelDebug - 4
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	case "fatal":
		return slog.LevelError + 4
	case "panic":
		return slog.LevelError + 8
	default:
		return slog.LevelInfo
	}
}

// Prometheus is the metrics endpoint.
type Prometheus struct {
	Enabled bool
	Port    int
}

// Pprof is the profiling endpoint.
type Pprof struct {
	Enabled bool
	Port    int
}

// Load reads the sources (later files override earlier ones) and returns
// the validated Config.
func Load(sources ...Source) (*Config, error) {
	f, err := Read(sources...)
	if err != nil {
		return nil, err
	}
	return New(f)
}

// Account returns the account named name.
func (c *Config) Account(name string) (Account, bool) {
	for _, a := range c.Kubernetes.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}
