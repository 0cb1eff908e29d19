package cpconfig

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/controlplane"
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

// loadString loads content as the only file.
func loadString(t *testing.T, content string) (*Config, string, error) {
	t.Helper()
	p := writeFile(t, t.TempDir(), "kubesvc.yml", content)
	c, err := Load(p)
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

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "kubesvc"
	}
	return h
}

func defaults(t *testing.T) *Config {
	return &Config{
		ID:           hostname(t),
		AgentTimeout: 90 * time.Second,
		Server:       Server{Port: 7002, SSL: SSL{ClientAuth: SSLClientAuthNone}},
		GRPC: GRPC{
			Port:                  9091,
			MaxInboundMessageSize: 4 << 20,
			HealthServiceEnabled:  true,
			Keepalive:             Keepalive{MinTime: 5 * time.Second},
			Security:              Security{ClientAuth: ClientAuthNone},
		},
		Heartbeat: Heartbeat{Enabled: true, Period: time.Minute},
		Cache: Cache{
			OperationWait:               30 * time.Second,
			OnDemandQuickWait:           10 * time.Second,
			AccountCleanupFrequency:     10 * time.Minute,
			EventsCleanupFrequency:      2 * time.Hour,
			CleanDataWithUnusedAccounts: true,
			CacheKinds: []string{"ReplicaSet", "Service", "Ingress", "DaemonSet", "Deployment", "Pod",
				"StatefulSet", "Job", "CronJob", "NetworkPolicy", "Namespace", "CustomResourceDefinition"},
		},
		DynamicAccounts: DynamicAccounts{RetryFrequency: 5 * time.Second, MaxRetries: 3,
			ScanFrequency: 120 * time.Second, ScanBatchSize: 572, ClouddriverDatabase: SQL{Driver: DriverSQLite, Path: "kubesvc.db"}},
		Cluster: Cluster{Mode: ClusterLocal, Kubernetes: ClusterKubernetesConfig{
			VerifySSL: true, HTTPPortName: "http", ClouddriverServiceNamePrefix: "spin-clouddriver"}},
		OperationHistoryRetention: 7 * 24 * time.Hour,
		SQL:                       SQL{Driver: DriverSQLite, Path: "kubesvc.db"},
		Logging:                   Logging{Level: slog.LevelInfo, Format: LogText},
	}
}

func TestDefaults(t *testing.T) {
	c, p, err := loadString(t, "# only a comment\n")
	if err != nil {
		t.Fatal(err)
	}
	want := defaults(t)
	want.Sources = []string{p}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	// No file at all gives the same defaults; so do empty and null documents.
	c, err = Load()
	if err != nil {
		t.Fatal(err)
	}
	want.Sources = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load():\n got %+v\nwant %+v", c, want)
	}
	for _, doc := range []string{"", "---\n~\n", "kubesvc:\n  # grpc: {}\n"} {
		if c := mustLoad(t, doc); c.GRPC.Port != 9091 || c.Unsupported != nil {
			t.Errorf("%q: %+v", doc, c)
		}
	}
}

func TestFullFile(t *testing.T) {
	c := mustLoad(t, `
server: {address: 127.0.0.1, port: 8080}
kubesvc:
  id: cp-1
  agentTimeoutSeconds: 30
  grpc:
    server:
      address: '::1'
      port: 9999
      maxInboundMessageSize: 16MiB
      healthServiceEnabled: true
      keepalive: {minTimeSeconds: 10}
      security:
        enabled: false
        clientAuth: require
        keepAliveHeartbeatSeconds: 15
        KeepAliveTimeOutSeconds: 7
  heartbeat: {enabled: true, initialDelay: 500, period: 30000, periodUnit: MILLISECONDS}
  cache:
    operationWaitMs: 1000
    cacheKinds: [Pod]
  dynamicAccounts:
    enabled: true
    namePatterns: ['^account1.*', '^.*account2.*']
    interceptor: {enabled: true}
  cluster: Kubernetes
  jobs: {operation-history: {purge: {weeks: 4}}}
sql: {driver: postgres, dsn: 'postgres://u@db/kubesvc'}
logging: {level: DEBUG, format: json}
`[1:])
	checks := map[string][2]any{
		"ID":              {c.ID, "cp-1"},
		"AgentTimeout":    {c.AgentTimeout, 30 * time.Second},
		"Server":          {c.Server, Server{Address: "127.0.0.1", Port: 8080, SSL: SSL{ClientAuth: SSLClientAuthNone}}},
		"GRPC.Address":    {c.GRPC.Address, "::1"},
		"GRPC.Port":       {c.GRPC.Port, 9999},
		"GRPC.Max":        {c.GRPC.MaxInboundMessageSize, 16 << 20},
		"GRPC.Keepalive":  {c.GRPC.Keepalive, Keepalive{MinTime: 10 * time.Second, Time: 15 * time.Second, Timeout: 7 * time.Second}},
		"GRPC.ClientAuth": {c.GRPC.Security.ClientAuth, ClientAuthRequire},
		"Heartbeat":       {c.Heartbeat, Heartbeat{Enabled: true, InitialDelay: 500 * time.Millisecond, Period: 30 * time.Second}},
		"Cache.OpWait":    {c.Cache.OperationWait, time.Second},
		"Cache.Kinds":     {c.Cache.CacheKinds, []string{"Pod"}},
		"DynamicAccounts": {c.DynamicAccounts, DynamicAccounts{Enabled: true, RetryFrequency: 5 * time.Second, MaxRetries: 3, ScanFrequency: DefaultScanFrequency, ScanBatchSize: DefaultScanBatchSize, NamePatterns: []string{"^account1.*", "^.*account2.*"}, InterceptorEnabled: true,
			ClouddriverDatabase: SQL{Driver: DriverPostgres, Path: "kubesvc.db", DSN: "postgres://u@db/kubesvc"}}},
		"Cluster.Mode":      {c.Cluster.Mode, ClusterKubernetes},
		"Retention":         {c.OperationHistoryRetention, 4 * 7 * 24 * time.Hour},
		"SQL":               {c.SQL, SQL{Driver: DriverPostgres, Path: "kubesvc.db", DSN: "postgres://u@db/kubesvc"}},
		"Logging":           {c.Logging, Logging{Level: slog.LevelDebug, Format: LogJSON}},
		"ServerConfig.GRPC": {c.ServerConfig(nil).GRPCAddr, "[::1]:9999"},
	}
	for name, ch := range checks {
		if !reflect.DeepEqual(ch[0], ch[1]) {
			t.Errorf("%s = %v, want %v", name, ch[0], ch[1])
		}
	}
	wantUnsupported := []string{
		"kubesvc.cache.cacheKinds",
	}
	if !reflect.DeepEqual(c.Unsupported, wantUnsupported) {
		t.Errorf("Unsupported =\n %q\nwant\n %q", c.Unsupported, wantUnsupported)
	}
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	base := writeFile(t, dir, "base.yml", `
kubesvc:
  grpc:
    server: {port: 9000, maxInboundMessageSize: 8MB}
  dynamicAccounts: {namePatterns: [a, b]}
sql: {path: /data/base.db}
logging: {level: warn}
`[1:])
	override := writeFile(t, dir, "override.yml", `
kubesvc.grpc.server.maxInboundMessageSize: ~
kubesvc:
  dynamicAccounts: {namePatterns: [c]}
sql:
  driver: mysql
  dsn: u:p@tcp(db)/kubesvc
`[1:])
	c, err := Load(base, override)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPC.Port != 9000 || c.GRPC.MaxInboundMessageSize != 4<<20 || c.Logging.Level != slog.LevelWarn {
		t.Errorf("grpc = %+v, logging = %+v", c.GRPC, c.Logging)
	}
	if !reflect.DeepEqual(c.DynamicAccounts.NamePatterns, []string{"c"}) {
		t.Errorf("namePatterns = %q (a later list replaces the earlier one)", c.DynamicAccounts.NamePatterns)
	}
	if c.SQL != (SQL{Driver: DriverMySQL, Path: "/data/base.db", DSN: "u:p@tcp(db)/kubesvc"}) {
		t.Errorf("sql = %+v", c.SQL)
	}
	if !reflect.DeepEqual(c.Sources, []string{base, override}) {
		t.Errorf("Sources = %v", c.Sources)
	}
	// A validation error names the file that set the key last.
	bad := writeFile(t, dir, "bad.yml", "\nkubesvc: {grpc: {server: {port: 0}}}\n")
	_, err = Load(base, bad)
	if want := "config " + bad + ": kubesvc.grpc.server.port: must be a port number between 1 and 65535, got 0 (line 2)"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: open ") {
		t.Errorf("err = %v", err)
	}
}

func TestDottedKeys(t *testing.T) {
	c := mustLoad(t, "kubesvc.grpc.server.port: 9500\nkubesvc.cluster: local\nkubesvc:\n  id: x\nsql.path: /tmp/k.db\n")
	if c.GRPC.Port != 9500 || c.ID != "x" || c.SQL.Path != "/tmp/k.db" || c.Unsupported != nil {
		t.Errorf("config = %+v", c)
	}
}

func TestUnsupportedKeys(t *testing.T) {
	c := mustLoad(t, `
kubesvc:
  disableV2Provider: true
  runtime:
    accounts:
      prod: {onlySpinnakerManaged: true}
  v2-cache-eviction.millis: 200
  cache: {cacheStreamingPoolCoreSize: 10}
  jobs: {operation-history: {purge: {cron: '0 0 0 * * 0'}}}
  grpc: {server: {security: {ciphers: [a], enabled: false}, healthServiceEnabled: false}}
  cluster: local
  dynamicAccounts: {enabled: false}
`[1:])
	want := []string{
		"kubesvc.cache.cacheStreamingPoolCoreSize", "kubesvc.disableV2Provider",
		"kubesvc.jobs.operation-history.purge.cron", "kubesvc.runtime", "kubesvc.v2-cache-eviction.millis",
	}
	if !reflect.DeepEqual(c.Unsupported, want) {
		t.Errorf("Unsupported =\n %q\nwant\n %q", c.Unsupported, want)
	}
}

func TestParseAndNewWithOverride(t *testing.T) {
	f := &File{}
	if err := Parse(f, "a.yml", []byte("kubesvc: {grpc: {server: {port: 1234}}}\n")); err != nil {
		t.Fatal(err)
	}
	if !f.IsSet("kubesvc.grpc.server.port") || f.IsSet("server.port") {
		t.Error("IsSet wrong")
	}
	port := 0 // as a command-line flag would set it
	f.Server.Port = &port
	_, err := New(f)
	if want := "config a.yml: server.port: must be a port number between 1 and 65535, got 0"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	// A File built in code works too.
	c, err := New(&File{Kubesvc: FileKubesvc{ID: "code"}})
	if err != nil || c.ID != "code" || c.Sources != nil {
		t.Errorf("New(code) = %+v, %v", c, err)
	}
}

func TestServerConfig(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	c := mustLoad(t, `
server: {address: 10.0.0.1, port: 7100}
kubesvc:
  id: replica-a
  agentTimeoutSeconds: 45
  grpc:
    server:
      address: '*'
      port: 9191
      maxInboundMessageSize: 1048576
      keepalive: {minTimeSeconds: 2}
      security: {keepAliveHeartbeatSeconds: 40, keepAliveTimeOutSeconds: 10}
`[1:])
	got := c.ServerConfig(log)
	want := controlplane.Config{
		ID:               "replica-a",
		GRPCAddr:         ":9191",
		HTTPAddr:         "10.0.0.1:7100",
		MaxRecvMsgBytes:  1 << 20,
		KeepaliveMinTime: 2 * time.Second,
		KeepaliveTime:    40 * time.Second,
		KeepaliveTimeout: 10 * time.Second,
		AgentTimeout:     45 * time.Second,
		Log:              log,
		HeartbeatPeriod:  time.Minute,
		AccountCleanup:   10 * time.Minute,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ServerConfig =\n %+v\nwant\n %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// The defaults map onto a valid server configuration too.
	d := mustLoad(t, "").ServerConfig(nil)
	if d.GRPCAddr != ":9091" || d.HTTPAddr != ":7002" || d.MaxRecvMsgBytes != 4<<20 || d.AgentTimeout != 90*time.Second || d.ID != hostname(t) {
		t.Errorf("default ServerConfig = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoggingHandler(t *testing.T) {
	var buf bytes.Buffer
	l := mustLoad(t, "logging: {level: warning, format: json}\n").Logging
	log := slog.New(l.NewHandler(&buf))
	log.Info("hidden")
	log.Warn("shown")
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.HasPrefix(s, `{"time"`) {
		t.Errorf("output = %q", s)
	}
	buf.Reset()
	l = mustLoad(t, "logging: {level: trace}\n").Logging
	slog.New(l.NewHandler(&buf)).Log(t.Context(), slog.LevelDebug-4, "x")
	if !strings.HasPrefix(buf.String(), "time=") {
		t.Errorf("output = %q", buf.String())
	}
}
