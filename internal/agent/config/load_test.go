package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadString loads content as the only, required file.
func loadString(t *testing.T, content string) (*Config, string, error) {
	t.Helper()
	p := writeFile(t, t.TempDir(), "agent.yaml", content)
	c, err := Load(Source{Path: p})
	return c, p, err
}

func mustLoad(t *testing.T, content string) *Config {
	t.Helper()
	c, _, err := loadString(t, content)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c, p, err := loadString(t, "# only a comment\n")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Sources: []string{p},
		Clouddriver: Clouddriver{
			Address:            "spin-clouddriver-grpc:9091",
			Insecure:           true,
			KeepAliveHeartbeat: 20 * time.Second,
			Backoff:            Backoff{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 120 * time.Second},
			ResponseRetries:    Retries{Enabled: true, MaxRetries: 3, BackOff: 3 * time.Second},
		},
		Kubernetes: Kubernetes{
			ReconnectTimeout: 5 * time.Second,
			Retries: KubeRetries{Enabled: true, MaxRetries: 3, BackOff: 3 * time.Second,
				RetryableErrors: []string{"timeout", "deadline exceeded"}},
			ServerSideApply: ServerSideApply{Enabled: "", ClearManagedFields: SSAAllowed, ManifestDefaults: SSAAllowed},
			Proxy:           KubeProxy{ReadOnly: true},
		},
		Tasks:                  Tasks{TotalBudget: 32, BudgetPerAccount: 8},
		Server:                 Server{Port: 8082},
		Logging:                Logging{Format: "text", Level: "info"},
		Prometheus:             Prometheus{Port: 8008},
		Pprof:                  Pprof{Port: 6060},
		DynamicAccountsEnabled: true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if c.Logging.SlogLevel() != slog.LevelInfo {
		t.Errorf("SlogLevel = %v", c.Logging.SlogLevel())
	}
}

func TestEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	empty := writeFile(t, dir, "empty.yaml", "")
	null := writeFile(t, dir, "null.yaml", "---\n~\n")
	c, err := Load(Source{Path: empty}, Source{Path: null}, Source{Path: filepath.Join(dir, "missing.yaml"), Optional: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Clouddriver.Address != defaultGRPC || len(c.Kubernetes.Accounts) != 0 {
		t.Errorf("unexpected config %+v", c)
	}
	if want := []string{empty, null}; !reflect.DeepEqual(c.Sources, want) {
		t.Errorf("Sources = %v, want %v", c.Sources, want)
	}
}

func TestRequiredFileMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "armory-agent.yml")
	_, err := Load(Source{Path: p})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "config "+p+": ") {
		t.Fatalf("err = %v, want a not-exist error naming %s", err, p)
	}
}

func TestFullFile(t *testing.T) {
	c := mustLoad(t, `
agent:
  id: agent-1
  zoneId: zone-a
clouddriver:
  grpc: cp.example.com:443
  insecure: false
  noProxy: true
  keepAliveHeartbeatSeconds: 0
  keepAliveTimeOutSeconds: 10
  keepAliveOperationSeconds: 600
  backoff: {baseDelay: 500000000, multiplier: 2, jitter: 0.1, maxDelay: 60000000000}
  responseRetries: {enabled: false, maxRetries: 5, backOffMs: 100}
  tls:
    serverName: cp
    insecureSkipVerify: true
    clientCertFile: /c.pem
    clientKeyFile: /k.pem
    cacertFile: /ca.pem
  auth:
    token: s3cret
kubernetes:
  noProxy: true
  proxy: {enabled: true, readOnly: false}
  reconnectTimeoutMs: 1000
  cacheGroupSize: 10
  cacheGroupDelayMs: 250
  retries: {enabled: false, maxRetries: 1, backOffMs: 10, retryAnyError: true, retryableErrors: [boom]}
  serverSideApply:
    enabled: Always
    kinds:
      - {kind: Deployment, clearManagedFields: never}
  accounts:
    - name: prod
      kubeconfigFile: /kube/prod
      context: prod-ctx
      namespaces: [ns1, ns2]
      onlyNamespacedResources: true
      kinds: [deployment, pod]
      omitKinds: [secret]
      maxResumableResourceAgeMs: 0
      insecure: true
      metrics: true
      customResourceDefinitions:
        - kind: ServiceMonitor.monitoring.coreos.com
        - {kind: Foo.example.com, scope: cluster}
      permissions:
        - READ: ['role1', 'role2']
        - WRITE: ['role3']
    - name: local
      serviceAccount: true
      omitNamespaces: [kube-system]
      permissions:
        read: [a]
tasks: {totalBudget: 0, budgetPerAccount: 2}
server: {host: 0.0.0.0, port: 9000}
logging: {file: /var/log/agent.log, format: JSON, level: WARNING}
prometheus: {enabled: true, port: 9090}
pprof: {enabled: true, port: 6061}
timeoutSeconds: 30
dynamicAccountsEnabled: false
`)
	cd := c.Clouddriver
	if cd.Address != "cp.example.com:443" || cd.Insecure || !cd.NoProxy || cd.KeepAliveHeartbeat != 0 ||
		cd.KeepAliveTimeout != 10*time.Second || cd.KeepAliveOperation != 10*time.Minute {
		t.Errorf("clouddriver = %+v", cd)
	}
	if want := (Backoff{500 * time.Millisecond, 2, 0.1, time.Minute}); cd.Backoff != want {
		t.Errorf("backoff = %+v, want %+v", cd.Backoff, want)
	}
	if want := (Retries{false, 5, 100 * time.Millisecond}); cd.ResponseRetries != want {
		t.Errorf("responseRetries = %+v", cd.ResponseRetries)
	}
	if want := (TLS{ServerName: "cp", InsecureSkipVerify: true, ClientCertFile: "/c.pem", ClientKeyFile: "/k.pem", CACertFile: "/ca.pem"}); cd.TLS != want {
		t.Errorf("tls = %+v", cd.TLS)
	}
	if cd.Auth.Token != "s3cret" {
		t.Errorf("auth = %+v", cd.Auth)
	}
	k := c.Kubernetes
	if !k.NoProxy || k.ReconnectTimeout != time.Second || k.CacheGroupSize != 10 || k.CacheGroupDelay != 250*time.Millisecond {
		t.Errorf("kubernetes = %+v", k)
	}
	if k.Proxy != (KubeProxy{Enabled: true, ReadOnly: false}) {
		t.Errorf("proxy = %+v", k.Proxy)
	}
	if want := (KubeRetries{false, 1, 10 * time.Millisecond, true, []string{"boom"}}); !reflect.DeepEqual(k.Retries, want) {
		t.Errorf("retries = %+v", k.Retries)
	}
	wantSSA := ServerSideApply{Enabled: SSAAlways, ClearManagedFields: SSAAllowed, ManifestDefaults: SSAAllowed,
		Kinds: []SSAKind{{Kind: "Deployment", Enabled: "", ClearManagedFields: SSANever, ManifestDefaults: SSAAllowed}}}
	if !reflect.DeepEqual(k.ServerSideApply, wantSSA) {
		t.Errorf("serverSideApply = %+v", k.ServerSideApply)
	}
	wantAccounts := []Account{{
		Name: "prod", KubeconfigFile: "/kube/prod", Context: "prod-ctx",
		Namespaces: []string{"ns1", "ns2"}, OnlyNamespacedResources: true,
		Kinds: []string{"deployment", "pod"}, OmitKinds: []string{"secret"},
		Insecure: true, Metrics: true,
		CustomResourceDefinitions: []CRD{
			{Kind: "ServiceMonitor.monitoring.coreos.com", Scope: ScopeNamespaced},
			{Kind: "Foo.example.com", Scope: ScopeCluster},
		},
		Permissions: map[string][]string{"READ": {"role1", "role2"}, "WRITE": {"role3"}},
	}, {
		Name: "local", ServiceAccount: true, OmitNamespaces: []string{"kube-system"},
		MaxResumableResourceAge: 5 * time.Minute,
		Permissions:             map[string][]string{"READ": {"a"}},
	}}
	if !reflect.DeepEqual(k.Accounts, wantAccounts) {
		t.Errorf("accounts:\n got %+v\nwant %+v", k.Accounts, wantAccounts)
	}
	if a, ok := c.Account("local"); !ok || !a.ServiceAccount {
		t.Errorf("Account(local) = %+v, %v", a, ok)
	}
	if c.Tasks != (Tasks{0, 2}) || c.Server != (Server{"0.0.0.0", 9000}) ||
		c.Logging != (Logging{"/var/log/agent.log", "json", "warn"}) ||
		c.Prometheus != (Prometheus{true, 9090}) || c.Pprof != (Pprof{true, 6061}) ||
		c.Timeout != 30*time.Second || c.DynamicAccountsEnabled || c.Agent != (Agent{"agent-1", "zone-a"}) {
		t.Errorf("other sections = %+v", c)
	}
	if c.Logging.SlogLevel() != slog.LevelWarn {
		t.Errorf("SlogLevel = %v", c.Logging.SlogLevel())
	}
}

func TestKubeconfigSpellings(t *testing.T) {
	for _, key := range []string{"kubeconfigFile", "kubeConfigFile"} {
		c := mustLoad(t, "kubernetes:\n  accounts:\n    - name: a\n      "+key+": /k\n")
		if got := c.Kubernetes.Accounts[0].KubeconfigFile; got != "/k" {
			t.Errorf("%s: KubeconfigFile = %q", key, got)
		}
	}
	_, p, err := loadString(t, "kubernetes:\n  accounts:\n    - name: a\n      kubeconfigFile: /k\n      kubeConfigFile: /j\n")
	if err == nil || !strings.Contains(err.Error(), "config "+p+`: kubernetes.accounts[0].kubeConfigFile: set twice (also on line 4) (line 5)`) {
		t.Errorf("both spellings: err = %v", err)
	}
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	base := writeFile(t, dir, "armory-agent.yml", `
clouddriver:
  grpc: base:9091
  insecure: false
  tls: {serverName: base}
logging: {level: debug}
kubernetes:
  accounts:
    - {name: a, kubeconfigFile: /a}
    - {name: b, kubeconfigFile: /b}
`)
	local := writeFile(t, dir, "armory-agent-local.yml", `
clouddriver:
  grpc: local:9091
kubernetes:
  accounts:
    - {name: c, serviceAccount: true}
`)
	c, err := Load(Source{Path: base}, Source{Path: local, Optional: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Clouddriver.Address != "local:9091" || c.Clouddriver.Insecure || c.Clouddriver.TLS.ServerName != "base" || c.Logging.Level != "debug" {
		t.Errorf("merged clouddriver/logging = %+v %+v", c.Clouddriver, c.Logging)
	}
	if len(c.Kubernetes.Accounts) != 1 || c.Kubernetes.Accounts[0].Name != "c" {
		t.Errorf("accounts not replaced wholesale: %+v", c.Kubernetes.Accounts)
	}
	if !reflect.DeepEqual(c.Sources, []string{base, local}) {
		t.Errorf("Sources = %v", c.Sources)
	}

	// A later file without accounts keeps the earlier list; an explicit empty list clears it.
	noAccounts := writeFile(t, dir, "no-accounts.yml", "server: {port: 1234}\n")
	c, err = Load(Source{Path: base}, Source{Path: noAccounts})
	if err != nil || len(c.Kubernetes.Accounts) != 2 || c.Server.Port != 1234 {
		t.Fatalf("keep accounts: %v %+v", err, c)
	}
	clear := writeFile(t, dir, "clear.yml", "kubernetes: {accounts: []}\n")
	c, err = Load(Source{Path: base}, Source{Path: clear})
	if err != nil || len(c.Kubernetes.Accounts) != 0 {
		t.Fatalf("clear accounts: %v %+v", err, c)
	}

	// A validation error in the merged result names the file that set the key.
	bad := writeFile(t, dir, "bad.yml", "kubernetes:\n  accounts:\n    - name: a\n")
	_, err = Load(Source{Path: base}, Source{Path: bad})
	if err == nil || !strings.Contains(err.Error(), "config "+bad+": kubernetes.accounts[0].kubeconfigFile: required unless serviceAccount is true") {
		t.Errorf("err = %v", err)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c := mustLoad(t, `
kubernetes:
  accounts:
    - &first
      name: a
      kubeconfigFile: /a
      namespaces: [n1]
    - <<: *first
      name: b
`)
	a, b := c.Kubernetes.Accounts[0], c.Kubernetes.Accounts[1]
	if b.Name != "b" || b.KubeconfigFile != "/a" || !reflect.DeepEqual(b.Namespaces, a.Namespaces) {
		t.Errorf("merge key: a=%+v b=%+v", a, b)
	}
}

func TestUnsupportedKeys(t *testing.T) {
	c := mustLoad(t, `
logging:
  maxSizeMb: 5
  fields: {agentNamespace: test}
server:
  ssl: {enabled: true, certFile: /x}
secrets:
  vault: {enabled: true}
tasks:
  queueCheckFrequencyMs: 100
kubernetes:
  accounts:
    - name: a
      serviceAccount: true
      onlySpinnakerManaged: true
      oAuthScopes: [x]
`)
	want := []string{
		"kubernetes.accounts[0].oAuthScopes", "kubernetes.accounts[0].onlySpinnakerManaged",
		"logging.fields", "logging.maxSizeMb", "secrets", "server.ssl", "tasks.queueCheckFrequencyMs",
	}
	if !reflect.DeepEqual(c.Unsupported, want) {
		t.Errorf("Unsupported = %v, want %v", c.Unsupported, want)
	}
}

// Modelled keys whose feature the agent lacks are validated, then listed
// as not acted on when the file asks for the feature.
func TestKeysNotActedOn(t *testing.T) {
	c := mustLoad(t, `
timeoutSeconds: 5
clouddriver:
  keepAliveOperationSeconds: 10
kubernetes:
  serverSideApply:
    clearManagedFields: always
    manifestDefaults: Always
    enabled: never
    kinds: [{kind: Deployment, clearManagedFields: never}, {kind: CustomResourceDefinition, enabled: Always}]
  accounts:
    - name: a
      serviceAccount: true
      metrics: true
`)
	want := []string{"timeoutSeconds", "clouddriver.keepAliveOperationSeconds",
		"kubernetes.serverSideApply.clearManagedFields", "kubernetes.serverSideApply.manifestDefaults",
		"kubernetes.serverSideApply.kinds[].enabled", "kubernetes.accounts[].metrics"}
	if !reflect.DeepEqual(c.Unsupported, want) {
		t.Errorf("Unsupported = %v, want %v", c.Unsupported, want)
	}
	if c := mustLoad(t, "kubernetes:\n  serverSideApply: {enabled: always, clearManagedFields: always, manifestDefaults: never, kinds: [{kind: Pod, enabled: always, clearManagedFields: allowed, manifestDefaults: allowed}]}\n  accounts:\n    - {name: a, serviceAccount: true, metrics: false}\n"); len(c.Unsupported) != 0 {
		t.Errorf("values that ask for nothing missing are reported: %v", c.Unsupported)
	}
}

func TestParseAndNewWithOverride(t *testing.T) {
	f := &File{}
	if err := Parse(f, "inline", []byte("clouddriver: {grpc: from-file:1}\n")); err != nil {
		t.Fatal(err)
	}
	flag := "from-flag:2"
	f.Clouddriver.GRPC = &flag
	c, err := New(f)
	if err != nil || c.Clouddriver.Address != flag || !reflect.DeepEqual(c.Sources, []string{"inline"}) {
		t.Fatalf("New = %+v, %v", c, err)
	}
	// A File built in code has no origins: errors name the key and the sources.
	f.Kubernetes.Accounts = []FileAccount{{KubeconfigFile: "/k"}}
	_, err = New(f)
	if err == nil || err.Error() != "config inline: kubernetes.accounts[0].name: required" {
		t.Errorf("err = %v", err)
	}
	_, err = New(&File{Kubernetes: FileKubernetes{Accounts: []FileAccount{{KubeconfigFile: "/k"}}}})
	if err == nil || err.Error() != "kubernetes.accounts[0].name: required" {
		t.Errorf("err = %v", err)
	}
}

func TestSlogLevels(t *testing.T) {
	for level, want := range map[string]slog.Level{
		"trace": slog.LevelDebug - 4, "DEBUG": slog.LevelDebug, "Info": slog.LevelInfo, "warn": slog.LevelWarn,
		"error": slog.LevelError, "fatal": slog.LevelError + 4, "panic": slog.LevelError + 8,
	} {
		c := mustLoad(t, "logging: {level: "+level+"}\n")
		if got := c.Logging.SlogLevel(); got != want {
			t.Errorf("%s: %v, want %v", level, got, want)
		}
	}
}
