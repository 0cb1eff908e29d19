package cpconfig

import (
	"errors"
	"fmt"
	"os"

	"github.com/kubesvc/kubesvc/internal/yamlstrict"
)

// File is the configuration as written in YAML, before defaults and
// validation. Fields keep the documented units. Pointer fields are nil when
// the key is absent (their default is not zero); plain fields default to
// their zero value or, for strings, to the default applied by New. Use Read
// or Parse to fill it and New to turn it into a Config.
type File struct {
	Server  FileServer  `yaml:"server"`
	Kubesvc FileKubesvc `yaml:"kubesvc"`
	SQL     FileSQL     `yaml:"sql"`
	Logging FileLogging `yaml:"logging"`

	// dec decodes into this File and remembers where each key was set.
	dec *yamlstrict.Decoder
}

// FileServer is server.*: the REST API's listener (Spring Boot's keys).
type FileServer struct {
	Port    *int    `yaml:"port"`
	Address string  `yaml:"address"`
	SSL     FileSSL `yaml:"ssl"`
}

// FileSSL is server.ssl: TLS on the REST API, with Spring Boot's names for
// PEM files (keystores are not supported).
type FileSSL struct {
	// Enabled defaults to true when a certificate is configured, as in
	// Spring Boot: a certificate without enabled never means plain HTTP.
	Enabled               *bool    `yaml:"enabled"`
	Certificate           string   `yaml:"certificate"`
	CertificatePrivateKey string   `yaml:"certificate-private-key"`
	KeyPassword           string   `yaml:"key-password"`
	TrustCertificate      string   `yaml:"trust-certificate"`
	ClientAuth            string   `yaml:"client-auth"`
	EnabledProtocols      []string `yaml:"enabled-protocols"`
	Ciphers               []string `yaml:"ciphers"`
}

// FilePeerTLS is kubesvc.peerTls (ours): how a replica verifies the others'
// REST certificates when it forwards to them.
type FilePeerTLS struct {
	CAFile     string `yaml:"caFile"`
	ServerName string `yaml:"serverName"`
}

// FileKubesvc is the kubesvc section: the documented plugin keys and ours.
type FileKubesvc struct {
	ID                  string                `yaml:"id"`
	AgentTimeoutSeconds *int                  `yaml:"agentTimeoutSeconds"`
	GRPC                FileGRPC              `yaml:"grpc"`
	Heartbeat           FileHeartbeat         `yaml:"heartbeat"`
	Cache               FileCache             `yaml:"cache"`
	DynamicAccounts     FileDynamicAccounts   `yaml:"dynamicAccounts"`
	Cluster             string                `yaml:"cluster"`
	ClusterKubernetes   FileClusterKubernetes `yaml:"cluster-kubernetes"`
	// ClusterStatic lists the peers for kubesvc.cluster: static (ours).
	ClusterStatic FileClusterStatic `yaml:"cluster-static"`
	// BaseURL is where other replicas reach this one's REST API (ours).
	BaseURL string `yaml:"baseUrl"`
	// PeerSecretFile holds the secret replicas present to each other's
	// peer endpoints (ours).
	PeerSecretFile string `yaml:"peerSecretFile"`
	// PeerTLS verifies the other replicas' REST API (ours).
	PeerTLS FilePeerTLS `yaml:"peerTls"`
	// Proxy is the Kubernetes API proxy through the agents (ours).
	Proxy        FileProxy `yaml:"proxy"`
	Jobs         FileJobs  `yaml:"jobs"`
	LoadBalancer string    `yaml:"loadBalancer"`
}

// FileProxy is kubesvc.proxy (ours).
type FileProxy struct {
	Enabled *bool `yaml:"enabled"`
	// X509 restricts the proxy to client certificates by subject.
	X509 struct {
		Filters []string `yaml:"filters"`
	} `yaml:"x509"`
}

// FileGRPC is kubesvc.grpc.
type FileGRPC struct {
	Server FileGRPCServer `yaml:"server"`
	Auth   FileGRPCAuth   `yaml:"auth"`
}

// FileGRPCServer is kubesvc.grpc.server: the agents' endpoint.
type FileGRPCServer struct {
	Address               string        `yaml:"address"`
	Port                  *int          `yaml:"port"`
	MaxInboundMessageSize *DataSize     `yaml:"maxInboundMessageSize"`
	HealthServiceEnabled  *bool         `yaml:"healthServiceEnabled"`
	Keepalive             FileKeepalive `yaml:"keepalive"`
	Security              FileSecurity  `yaml:"security"`
}

// FileKeepalive is kubesvc.grpc.server.keepalive (our key).
type FileKeepalive struct {
	MinTimeSeconds *int `yaml:"minTimeSeconds"`
}

// FileSecurity is kubesvc.grpc.server.security: TLS, and (despite the
// section) the server's keepalive pings. KeepAliveTimeOutSeconds is spelled
// with a capital K as documented; the lower-case spelling is accepted too.
type FileSecurity struct {
	Enabled                   bool     `yaml:"enabled"`
	CertificateChain          string   `yaml:"certificateChain"`
	PrivateKey                string   `yaml:"privateKey"`
	PrivateKeyPassword        string   `yaml:"privateKeyPassword"`
	ClientAuth                string   `yaml:"clientAuth"`
	TrustCertCollection       string   `yaml:"trustCertCollection"`
	Ciphers                   []string `yaml:"ciphers"`
	Protocols                 string   `yaml:"protocols"`
	KeepAliveHeartbeatSeconds int      `yaml:"keepAliveHeartbeatSeconds"`
	KeepAliveTimeOutSeconds   int      `yaml:"KeepAliveTimeOutSeconds" alias:"keepAliveTimeOutSeconds"`
}

// FileGRPCAuth is kubesvc.grpc.auth.
type FileGRPCAuth struct {
	X509 FileX509 `yaml:"x509"`
}

// FileX509 is kubesvc.grpc.auth.x509: client certificate subject filters.
type FileX509 struct {
	Enabled bool     `yaml:"enabled"`
	Filters []string `yaml:"filters"`
}

// FileHeartbeat is kubesvc.heartbeat; initialDelay and period are counted in
// periodUnit (a Java TimeUnit name).
type FileHeartbeat struct {
	Enabled      *bool  `yaml:"enabled"`
	InitialDelay int64  `yaml:"initialDelay"`
	Period       *int64 `yaml:"period"`
	PeriodUnit   string `yaml:"periodUnit"`
}

// FileCache is kubesvc.cache.
type FileCache struct {
	OperationWaitMs                *int64   `yaml:"operationWaitMs"`
	OnDemandQuickWaitMs            *int64   `yaml:"onDemandQuickWaitMs"`
	AccountCleanupFrequencySeconds *int64   `yaml:"accountCleanupFrequencySeconds"`
	EventsCleanupFrequencySeconds  *int64   `yaml:"eventsCleanupFrequencySeconds"`
	NamespaceExpiryMinutes         int64    `yaml:"namespaceExpiryMinutes"`
	CleanDataWithUnusedAccounts    *bool    `yaml:"cleanDataWithUnusedAccounts"`
	CacheKinds                     []string `yaml:"cacheKinds"`
}

// FileDynamicAccounts is kubesvc.dynamicAccounts.
type FileDynamicAccounts struct {
	Enabled               bool            `yaml:"enabled"`
	RetryFrequencySeconds *int            `yaml:"retryFrequencySeconds"`
	MaxRetries            *int            `yaml:"maxRetries"`
	ScanFrequencySeconds  int             `yaml:"scanFrequencySeconds"`
	ScanBatchSize         int             `yaml:"scanBatchSize"`
	NamePatterns          []string        `yaml:"namePatterns"`
	Interceptor           FileInterceptor `yaml:"interceptor"`
	// EncryptionKey / EncryptionKeyFile seal inline kubeconfig contents at
	// rest (ours): 32 bytes as base64 or hex, or a file holding them.
	EncryptionKey     string `yaml:"encryptionKey"`
	EncryptionKeyFile string `yaml:"encryptionKeyFile"`
	// ClouddriverDatabase is where Clouddriver's accounts table lives
	// (ours); unset: the control plane's own database (sql.*).
	ClouddriverDatabase FileSQL `yaml:"clouddriverDatabase"`
}

// FileInterceptor is kubesvc.dynamicAccounts.interceptor.
type FileInterceptor struct {
	Enabled bool `yaml:"enabled"`
	// ClouddriverURL: where /credentials requests for other account types
	// are proxied (ours).
	ClouddriverURL string `yaml:"clouddriverUrl"`
}

// FileClusterStatic is kubesvc.cluster-static (ours): a fixed peer list
// for replicas running outside Kubernetes.
type FileClusterStatic struct {
	Peers []FilePeer `yaml:"peers"`
}

// FilePeer is one replica of kubesvc.cluster-static.peers.
type FilePeer struct {
	ID      string `yaml:"id"`
	BaseURL string `yaml:"baseUrl"`
}

// FileClusterKubernetes is kubesvc.cluster-kubernetes: peer discovery
// through Kubernetes Endpoints.
type FileClusterKubernetes struct {
	KubeconfigFile               string `yaml:"kubeconfigFile"`
	VerifySsl                    *bool  `yaml:"verifySsl"`
	Namespace                    string `yaml:"namespace"`
	HTTPPortName                 string `yaml:"httpPortName"`
	ClouddriverServiceNamePrefix string `yaml:"clouddriverServiceNamePrefix"`
}

// FileJobs is kubesvc.jobs.
type FileJobs struct {
	OperationHistory FileOperationHistory `yaml:"operation-history"`
}

// FileOperationHistory is kubesvc.jobs.operation-history.
type FileOperationHistory struct {
	Purge FilePurge `yaml:"purge"`
}

// FilePurge is kubesvc.jobs.operation-history.purge.
type FilePurge struct {
	Weeks *int `yaml:"weeks"`
}

// FileSQL is sql.* (our keys): the database of the cache and state.
type FileSQL struct {
	Driver string `yaml:"driver"`
	Path   string `yaml:"path"`
	DSN    string `yaml:"dsn"`
	// DSNFile holds the DSN instead of DSN (a mounted Secret), so that
	// its password stays out of the configuration file.
	DSNFile string `yaml:"dsnFile"`
}

// FileLogging is logging.* (our keys).
type FileLogging struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

func (f *File) decoder() *yamlstrict.Decoder {
	if f.dec == nil {
		f.dec = &yamlstrict.Decoder{IsUnsupported: isUnsupportedKey, DottedKeys: true}
	}
	return f.dec
}

// Sources returns the files read into f, in order.
func (f *File) Sources() []string { return f.dec.Sources() }

// IsSet reports whether a key (canonical dotted path, such as
// kubesvc.grpc.server.port) was set by a file read into f.
func (f *File) IsSet(key string) bool { return f.dec.IsSet(key) }

// Read parses the files in order into one File; later files override the
// keys they set in earlier ones. Every file must exist; an empty file is
// fine. The errors of every file are returned together, each naming the
// file, the key and the line.
func Read(paths ...string) (*File, error) {
	f := &File{}
	var errs []error
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := Parse(f, p, data); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// Parse decodes one YAML document into f, overriding the keys it sets. name
// is used in error messages (normally the file path). On error f may be
// partly updated.
func Parse(f *File, name string, data []byte) error {
	return f.decoder().Decode(f, name, data)
}
