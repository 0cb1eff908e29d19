package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/kubesvc/kubesvc/internal/yamlstrict"
)

// File is the configuration as written in YAML, before defaults and
// validation. Fields keep the documented units. Pointer fields are nil when
// the key is absent; plain fields have a zero default. Use Read to fill it
// from files and New to turn it into a Config.
type File struct {
	Agent                  FileAgent       `yaml:"agent"`
	Clouddriver            FileClouddriver `yaml:"clouddriver"`
	Kubernetes             FileKubernetes  `yaml:"kubernetes"`
	Tasks                  FileTasks       `yaml:"tasks"`
	Server                 FileServer      `yaml:"server"`
	Logging                FileLogging     `yaml:"logging"`
	Prometheus             FilePrometheus  `yaml:"prometheus"`
	Pprof                  FilePprof       `yaml:"pprof"`
	TimeoutSeconds         int             `yaml:"timeoutSeconds"`
	DynamicAccountsEnabled *bool           `yaml:"dynamicAccountsEnabled"`

	// dec decodes into this File and remembers where each key was set.
	dec *yamlstrict.Decoder
}

// FileAgent holds this agent's identity (our own keys, not Armory's).
type FileAgent struct {
	ID     string `yaml:"id"`
	ZoneID string `yaml:"zoneId"`
}

// FileClouddriver is the clouddriver section: the connection to the control plane.
type FileClouddriver struct {
	GRPC                      *string             `yaml:"grpc"`
	Insecure                  *bool               `yaml:"insecure"`
	NoProxy                   bool                `yaml:"noProxy"`
	KeepAliveHeartbeatSeconds *int                `yaml:"keepAliveHeartbeatSeconds"`
	KeepAliveTimeOutSeconds   int                 `yaml:"keepAliveTimeOutSeconds"`
	KeepAliveOperationSeconds int                 `yaml:"keepAliveOperationSeconds"`
	Backoff                   FileBackoff         `yaml:"backoff"`
	ResponseRetries           FileResponseRetries `yaml:"responseRetries"`
	TLS                       FileTLS             `yaml:"tls"`
	Auth                      FileAuth            `yaml:"auth"`
}

// FileBackoff is clouddriver.backoff; delays are in nanoseconds.
type FileBackoff struct {
	BaseDelay  *int64   `yaml:"baseDelay"`
	Multiplier *float64 `yaml:"multiplier"`
	Jitter     *float64 `yaml:"jitter"`
	MaxDelay   *int64   `yaml:"maxDelay"`
}

// FileResponseRetries is clouddriver.responseRetries.
type FileResponseRetries struct {
	Enabled    *bool `yaml:"enabled"`
	MaxRetries *int  `yaml:"maxRetries"`
	BackOffMs  *int  `yaml:"backOffMs"`
}

// FileTLS is clouddriver.tls.
type FileTLS struct {
	ServerName            string `yaml:"serverName"`
	InsecureSkipVerify    bool   `yaml:"insecureSkipVerify"`
	ClientCertFile        string `yaml:"clientCertFile"`
	ClientKeyFile         string `yaml:"clientKeyFile"`
	ClientKeyFilePassword string `yaml:"clientKeyFilePassword"`
	CACertFile            string `yaml:"cacertFile"`
}

// FileAuth is clouddriver.auth.
type FileAuth struct {
	Token        string           `yaml:"token"`
	TokenCommand FileTokenCommand `yaml:"tokenCommand"`
}

// FileTokenCommand is clouddriver.auth.tokenCommand.
type FileTokenCommand struct {
	Command                string   `yaml:"command"`
	Args                   []string `yaml:"args"`
	Format                 string   `yaml:"format"`
	RefreshIntervalSeconds int      `yaml:"refreshIntervalSeconds"`
}

// FileKubernetes is the kubernetes section.
type FileKubernetes struct {
	Accounts           []FileAccount       `yaml:"accounts"`
	NoProxy            bool                `yaml:"noProxy"`
	ReconnectTimeoutMs *int                `yaml:"reconnectTimeoutMs"`
	CacheGroupSize     int                 `yaml:"cacheGroupSize"`
	CacheGroupDelayMs  int                 `yaml:"cacheGroupDelayMs"`
	Retries            FileKubeRetries     `yaml:"retries"`
	ServerSideApply    FileServerSideApply `yaml:"serverSideApply"`
	Proxy              FileKubeProxy       `yaml:"proxy"`
}

// FileKubeProxy is kubernetes.proxy (ours): what the agent relays of the
// control plane's Kubernetes API proxy.
type FileKubeProxy struct {
	Enabled  bool  `yaml:"enabled"`
	ReadOnly *bool `yaml:"readOnly"`
}

// FileAccount is one item of kubernetes.accounts. KubeconfigFile is also
// read from the spelling kubeConfigFile used in parts of the documentation.
type FileAccount struct {
	Name                      string      `yaml:"name"`
	KubeconfigFile            string      `yaml:"kubeconfigFile" alias:"kubeConfigFile"`
	Context                   string      `yaml:"context"`
	ServiceAccount            bool        `yaml:"serviceAccount"`
	Namespaces                []string    `yaml:"namespaces"`
	OmitNamespaces            []string    `yaml:"omitNamespaces"`
	Kinds                     []string    `yaml:"kinds"`
	OmitKinds                 []string    `yaml:"omitKinds"`
	OnlyNamespacedResources   bool        `yaml:"onlyNamespacedResources"`
	MaxResumableResourceAgeMs *int64      `yaml:"maxResumableResourceAgeMs"`
	Insecure                  bool        `yaml:"insecure"`
	Metrics                   bool        `yaml:"metrics"`
	NoProxy                   bool        `yaml:"noProxy"`
	CustomResourceDefinitions []FileCRD   `yaml:"customResourceDefinitions"`
	Permissions               Permissions `yaml:"permissions"`
}

// FileCRD is one item of kubernetes.accounts[].customResourceDefinitions.
type FileCRD struct {
	Kind  string `yaml:"kind"`
	Scope string `yaml:"scope"`
}

// Permissions maps READ or WRITE to role names. In YAML it is either the
// documented list of one-key mappings (- READ: [a, b]) or a plain mapping.
type Permissions map[string][]string

// FileKubeRetries is kubernetes.retries.
type FileKubeRetries struct {
	Enabled         *bool    `yaml:"enabled"`
	MaxRetries      *int     `yaml:"maxRetries"`
	BackOffMs       *int     `yaml:"backOffMs"`
	RetryAnyError   bool     `yaml:"retryAnyError"`
	RetryableErrors []string `yaml:"retryableErrors"`
}

// FileServerSideApply is kubernetes.serverSideApply; modes are always, never or allowed.
type FileServerSideApply struct {
	Enabled            string        `yaml:"enabled"`
	ClearManagedFields string        `yaml:"clearManagedFields"`
	ManifestDefaults   string        `yaml:"manifestDefaults"`
	Kinds              []FileSSAKind `yaml:"kinds"`
}

// FileSSAKind is one item of kubernetes.serverSideApply.kinds.
type FileSSAKind struct {
	Kind               string `yaml:"kind"`
	Enabled            string `yaml:"enabled"`
	ClearManagedFields string `yaml:"clearManagedFields"`
	ManifestDefaults   string `yaml:"manifestDefaults"`
}

// FileTasks is the tasks section (concurrency budgets for list tasks).
type FileTasks struct {
	TotalBudget      *int `yaml:"totalBudget"`
	BudgetPerAccount *int `yaml:"budgetPerAccount"`
}

// FileServer is the server section (health endpoint).
type FileServer struct {
	Host string `yaml:"host"`
	Port *int   `yaml:"port"`
}

// FileLogging is the logging section.
type FileLogging struct {
	File   string `yaml:"file"`
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// FilePrometheus is the prometheus section.
type FilePrometheus struct {
	Enabled bool `yaml:"enabled"`
	Port    *int `yaml:"port"`
}

// FilePprof is the pprof section.
type FilePprof struct {
	Enabled bool `yaml:"enabled"`
	Port    *int `yaml:"port"`
}

// Source is a configuration file to read. A missing or empty Optional file
// is skipped; a missing required file is an error.
type Source struct {
	Path     string
	Optional bool
}

func (f *File) decoder() *yamlstrict.Decoder {
	if f.dec == nil {
		f.dec = &yamlstrict.Decoder{IsUnsupported: unsupportedKey, KeepNullOrigins: true, KeysAsWritten: true}
	}
	return f.dec
}

// Sources returns the files read into f, in order.
func (f *File) Sources() []string { return f.dec.Sources() }

// Read parses the sources in order into one File; later files override
// earlier ones. The errors of every file are returned together, each naming
// the file, key and line.
func Read(sources ...Source) (*File, error) {
	f := &File{}
	var errs []error
	for _, s := range sources {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			if s.Optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("config %s: %w", s.Path, err)
		}
		if err := Parse(f, s.Path, data); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// Parse decodes one YAML document into dst, overriding the keys it sets.
// name is used in error messages (normally the file path). On error dst may
// be partly updated.
func Parse(dst *File, name string, data []byte) error {
	return dst.decoder().Decode(dst, name, data)
}

// UnmarshalStrictYAMLNode accepts the documented list of one-key mappings
// (- READ: [a, b]) and a plain mapping (READ: [a, b]).
func (p *Permissions) UnmarshalStrictYAMLNode(d *yamlstrict.FieldDecoder, n *yaml.Node) {
	path := d.Key()
	out := Permissions{}
	add := func(m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i]
			if k.Kind != yaml.ScalarNode {
				d.Fail(path, k.Line, "keys must be strings")
				continue
			}
			kp := path + "." + k.Value
			d.Record(kp, k.Line)
			var roles []string
			if d.Decode(m.Content[i+1], &roles, kp) {
				out[k.Value] = append(out[k.Value], roles...)
			}
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		add(n)
	case yaml.SequenceNode:
		for i, raw := range n.Content {
			item := yamlstrict.Resolve(raw)
			if item == nil || item.Kind != yaml.MappingNode {
				d.Fail(fmt.Sprintf("%s[%d]", path, i), raw.Line, "expected a mapping such as READ: [role1, role2]")
				continue
			}
			add(item)
		}
	default:
		d.TypeError(path, n, reflect.TypeFor[map[string]any]())
	}
	*p = out
}
