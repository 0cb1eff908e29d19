package cpconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kubesvc/kubesvc/internal/certs"
)

// validator collects validation errors, each a *yamlstrict.KeyError naming
// its key and, when the key came from a file, the file and line.
type validator struct {
	f    *File
	errs []error
}

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, v.f.dec.KeyError(key, format, args...))
}

func (v *validator) port(key string, p int) int {
	if p < 1 || p > 65535 {
		v.fail(key, "must be a port number between 1 and 65535, got %d", p)
	}
	return p
}

func (v *validator) nonNegative(key string, n int64) {
	if n < 0 {
		v.fail(key, "must not be negative, got %d", n)
	}
}

func (v *validator) positive(key string, n int64) {
	if n <= 0 {
		v.fail(key, "must be positive, got %d", n)
	}
}

// duration converts n units to a Duration; n must not be negative (or,
// with positive, must be above zero) nor overflow.
func (v *validator) duration(key string, n int64, unit time.Duration, positive bool) time.Duration {
	switch {
	case positive && n <= 0:
		v.fail(key, "must be positive, got %d", n)
	case n < 0:
		v.fail(key, "must not be negative, got %d", n)
	case n > math.MaxInt64/int64(unit):
		v.fail(key, "%d is too large", n)
	default:
		return time.Duration(n) * unit
	}
	return 0
}

// host checks a listen address: empty, a host name or an IP address, no port.
func (v *validator) host(key, s string) string {
	if s != "" && (strings.ContainsAny(s, " \t[]/") || (strings.Contains(s, ":") && net.ParseIP(s) == nil)) {
		v.fail(key, "must be a host name or an IP address without a port, got %q", s)
	}
	return s
}

// patterns checks a list of regular expressions.
func (v *validator) patterns(key string, list []string) []string {
	for i, p := range list {
		if p == "" {
			v.fail(fmt.Sprintf("%s[%d]", key, i), "must not be empty")
		} else if _, err := regexp.Compile(p); err != nil {
			v.fail(fmt.Sprintf("%s[%d]", key, i), "invalid regular expression: %v", err)
		}
	}
	return nilIfEmpty(list)
}

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// timeUnits are the Java TimeUnit names accepted by kubesvc.heartbeat.periodUnit.
var timeUnits = map[string]time.Duration{
	"NANOSECONDS": time.Nanosecond, "MICROSECONDS": time.Microsecond, "MILLISECONDS": time.Millisecond,
	"SECONDS": time.Second, "MINUTES": time.Minute, "HOURS": time.Hour, "DAYS": 24 * time.Hour,
}

// New applies defaults to f, converts units and validates. All errors are
// returned together; each is a *yamlstrict.KeyError naming its key.
func New(f *File) (*Config, error) {
	f.decoder()
	v := &validator{f: f}
	k := &f.Kubesvc
	c := &Config{
		Sources:      f.Sources(),
		ID:           strings.TrimSpace(k.ID),
		AgentTimeout: v.duration("kubesvc.agentTimeoutSeconds", int64(orDefault(k.AgentTimeoutSeconds, int(DefaultAgentTimeout/time.Second))), time.Second, true),
		Server: Server{
			Address: v.host("server.address", strings.TrimSpace(f.Server.Address)),
			Port:    v.port("server.port", orDefault(f.Server.Port, DefaultHTTPPort)),
			SSL:     v.ssl(&f.Server.SSL),
		},
		LoadBalancer: strings.TrimSpace(k.LoadBalancer),
		Proxy:        orDefault(k.Proxy.Enabled, false),
	}
	if c.ID == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.ID = h
		} else {
			c.ID = "kubesvc"
		}
	}
	c.GRPC = v.grpc(&k.GRPC)
	c.Heartbeat = v.heartbeat(&k.Heartbeat)
	c.Cache = v.cache(&k.Cache)
	if c.Cache.AccountCleanupFrequency == 0 {
		// 0 means the default, as the server takes it; say so here, where
		// the heartbeat is checked against it.
		c.Cache.AccountCleanupFrequency = DefaultAccountCleanupFrequency
	}
	if c.Heartbeat.Enabled && c.Cache.AccountCleanupFrequency > 0 && c.Heartbeat.Period >= c.Cache.AccountCleanupFrequency {
		v.fail("kubesvc.heartbeat.period", "must be shorter than kubesvc.cache.accountCleanupFrequencySeconds (%s), or accounts are cleaned up while their agents are connected; got %s",
			c.Cache.AccountCleanupFrequency, c.Heartbeat.Period)
	}
	c.DynamicAccounts = v.dynamicAccounts(&k.DynamicAccounts)
	if fs := k.Proxy.X509.Filters; len(fs) > 0 {
		c.ProxySubjects = v.patterns("kubesvc.proxy.x509.filters", fs)
		// Fail closed, as for gRPC: a filter that cannot see a
		// certificate would let everyone in.
		if !c.Server.SSL.Enabled || c.Server.SSL.ClientAuth == SSLClientAuthNone {
			v.fail("kubesvc.proxy.x509.filters", "needs server.ssl.enabled: true and server.ssl.client-auth want or need (subjects come from client certificates)")
		}
	}
	c.Cluster = v.cluster(k)
	v.peerScheme(c)
	c.OperationHistoryRetention = v.duration("kubesvc.jobs.operation-history.purge.weeks",
		int64(orDefault(k.Jobs.OperationHistory.Purge.Weeks, DefaultOperationHistoryWeeks)), 7*24*time.Hour, false)
	if c.OperationHistoryRetention == 0 {
		c.OperationHistoryRetention = DefaultOperationHistoryWeeks * 7 * 24 * time.Hour // 0: the default
	}
	c.SQL = v.sql(&f.SQL)
	c.DynamicAccounts.ClouddriverDatabase = v.clouddriverDatabase(&k.DynamicAccounts.ClouddriverDatabase, c.SQL)
	c.Logging = v.logging(&f.Logging)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	c.Unsupported = unsupported(f, c)
	return c, nil
}

func (v *validator) grpc(f *FileGRPC) GRPC {
	s, sec := &f.Server, &f.Server.Security
	g := GRPC{
		Address:               strings.TrimSpace(s.Address),
		Port:                  v.port("kubesvc.grpc.server.port", orDefault(s.Port, DefaultGRPCPort)),
		MaxInboundMessageSize: DefaultMaxInboundMessageSize,
		HealthServiceEnabled:  orDefault(s.HealthServiceEnabled, true),
		Keepalive: Keepalive{
			MinTime: v.duration("kubesvc.grpc.server.keepalive.minTimeSeconds",
				int64(orDefault(s.Keepalive.MinTimeSeconds, int(DefaultKeepaliveMinTime/time.Second))), time.Second, true),
			Time:    v.duration("kubesvc.grpc.server.security.keepAliveHeartbeatSeconds", int64(sec.KeepAliveHeartbeatSeconds), time.Second, false),
			Timeout: v.duration("kubesvc.grpc.server.security.KeepAliveTimeOutSeconds", int64(sec.KeepAliveTimeOutSeconds), time.Second, false),
		},
		Security: Security{
			Enabled:             sec.Enabled,
			CertificateChain:    sec.CertificateChain,
			PrivateKey:          sec.PrivateKey,
			PrivateKeyPassword:  sec.PrivateKeyPassword,
			ClientAuth:          ClientAuth(strings.ToUpper(strings.TrimSpace(sec.ClientAuth))),
			TrustCertCollection: sec.TrustCertCollection,
		},
		X509: X509{Enabled: f.Auth.X509.Enabled, Filters: v.patterns("kubesvc.grpc.auth.x509.filters", f.Auth.X509.Filters)},
	}
	if g.Address == "*" {
		g.Address = ""
	}
	v.host("kubesvc.grpc.server.address", g.Address)
	if s.MaxInboundMessageSize != nil {
		size := *s.MaxInboundMessageSize
		if size < MinMaxInboundMessageSize || size > math.MaxInt32 {
			v.fail("kubesvc.grpc.server.maxInboundMessageSize", "must be between 64KB and 2GB (%d to %d bytes), got %s",
				MinMaxInboundMessageSize, math.MaxInt32, size)
		} else {
			g.MaxInboundMessageSize = int(size)
		}
	}
	switch g.Security.ClientAuth {
	case "":
		g.Security.ClientAuth = ClientAuthNone
	case ClientAuthNone, ClientAuthOptional, ClientAuthRequire:
	default:
		v.fail("kubesvc.grpc.server.security.clientAuth", "must be NONE, OPTIONAL or REQUIRE, got %q", sec.ClientAuth)
	}
	if sec.Enabled {
		if g.Security.ClientAuth != ClientAuthNone && strings.TrimSpace(sec.TrustCertCollection) == "" {
			// Verifying agents against the system's roots would accept any
			// publicly issued certificate.
			v.fail("kubesvc.grpc.server.security.trustCertCollection", "required when clientAuth is %s: the CA bundle that issues the agents' certificates (the system's roots would accept any public certificate)", g.Security.ClientAuth)
		}
		if strings.TrimSpace(sec.CertificateChain) == "" {
			v.fail("kubesvc.grpc.server.security.certificateChain", "required when security is enabled")
		}
		if strings.TrimSpace(sec.PrivateKey) == "" {
			v.fail("kubesvc.grpc.server.security.privateKey", "required when security is enabled")
		}
		lo, hi, err := certs.ParseProtocols(sec.Protocols)
		if err != nil {
			v.fail("kubesvc.grpc.server.security.protocols", "%v", err)
		}
		g.Security.MinVersion, g.Security.MaxVersion = lo, hi
		suites, err := certs.ParseCipherSuites(sec.Ciphers)
		if err != nil {
			v.fail("kubesvc.grpc.server.security.ciphers", "%v", err)
		}
		g.Security.CipherSuites = suites
	}
	if g.X509.Enabled {
		// Fail closed: a filter that cannot see a certificate would let
		// every agent in.
		switch {
		case !sec.Enabled:
			v.fail("kubesvc.grpc.auth.x509.enabled", "needs kubesvc.grpc.server.security.enabled: true (subjects come from client certificates)")
		case g.Security.ClientAuth == ClientAuthNone:
			v.fail("kubesvc.grpc.auth.x509.enabled", "needs kubesvc.grpc.server.security.clientAuth OPTIONAL or REQUIRE: with NONE no client certificate is asked for")
		}
		if len(g.X509.Filters) == 0 {
			v.fail("kubesvc.grpc.auth.x509.filters", "at least one filter is required when x509 filtering is enabled")
		}
	}
	return g
}

// peerScheme checks that the replicas' URLs agree with server.ssl: all of a
// cluster's replicas share the setting, so with TLS on every peer URL is
// https, and kubesvc.peerTls only makes sense with it.
func (v *validator) peerScheme(c *Config) {
	ssl := c.Server.SSL.Enabled
	check := func(key, u string) {
		if u == "" {
			return
		}
		if https := strings.HasPrefix(strings.ToLower(u), "https://"); https != ssl {
			if ssl {
				v.fail(key, "must be an https URL when server.ssl.enabled is true, got %q", u)
			} else {
				v.fail(key, "is https but server.ssl.enabled is false: the replicas serve plain HTTP, got %q", u)
			}
		}
	}
	check("kubesvc.baseUrl", c.Cluster.BaseURL)
	for i, p := range c.Cluster.Static {
		check(fmt.Sprintf("kubesvc.cluster-static.peers[%d].baseUrl", i), p.BaseURL)
	}
	if !ssl && (c.Cluster.PeerCAFile != "" || c.Cluster.PeerServerName != "") {
		v.fail("kubesvc.peerTls", "needs server.ssl.enabled: true (replicas reach each other over the REST API's TLS)")
	}
}

func (v *validator) ssl(f *FileSSL) SSL {
	configured := strings.TrimSpace(f.Certificate) != "" || strings.TrimSpace(f.CertificatePrivateKey) != ""
	s := SSL{
		Enabled: orDefault(f.Enabled, configured), Certificate: strings.TrimSpace(f.Certificate), CertificatePrivateKey: strings.TrimSpace(f.CertificatePrivateKey),
		KeyPassword: f.KeyPassword, TrustCertificate: strings.TrimSpace(f.TrustCertificate),
		ClientAuth: strings.ToLower(strings.TrimSpace(f.ClientAuth)),
	}
	switch s.ClientAuth {
	case "":
		s.ClientAuth = SSLClientAuthNone
	case SSLClientAuthNone, SSLClientAuthWant, SSLClientAuthNeed:
	default:
		v.fail("server.ssl.client-auth", "must be none, want or need, got %q", f.ClientAuth)
	}
	if !s.Enabled {
		return s
	}
	if s.ClientAuth != SSLClientAuthNone && s.TrustCertificate == "" {
		v.fail("server.ssl.trust-certificate", "required when client-auth is %s: the CA bundle that issues the clients' certificates (the system's roots would accept any public certificate)", s.ClientAuth)
	}
	if s.Certificate == "" {
		v.fail("server.ssl.certificate", "required when server.ssl.enabled is true (a PEM certificate chain; keystores are not supported)")
	}
	if s.CertificatePrivateKey == "" {
		v.fail("server.ssl.certificate-private-key", "required when server.ssl.enabled is true (a PEM private key)")
	}
	lo, hi, err := certs.ParseProtocols(strings.Join(f.EnabledProtocols, ","))
	if err != nil {
		v.fail("server.ssl.enabled-protocols", "%v", err)
	}
	s.MinVersion, s.MaxVersion = lo, hi
	if s.CipherSuites, err = certs.ParseCipherSuites(f.Ciphers); err != nil {
		v.fail("server.ssl.ciphers", "%v", err)
	} else if len(s.CipherSuites) > 0 && s.MinVersion != tls.VersionTLS13 && !slices.ContainsFunc(s.CipherSuites, func(id uint16) bool {
		return id == tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 || id == tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	}) {
		// Go's HTTP/2 server refuses to start without one (RFC 7540 9.2.2).
		v.fail("server.ssl.ciphers", "must include TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (HTTP/2 requires it) unless enabled-protocols is TLSv1.3 only")
	}
	return s
}

func (v *validator) heartbeat(f *FileHeartbeat) Heartbeat {
	h := Heartbeat{Enabled: orDefault(f.Enabled, true)}
	name := strings.ToUpper(strings.TrimSpace(f.PeriodUnit))
	if name == "" {
		name = DefaultHeartbeatPeriodUnit
	}
	unit, ok := timeUnits[name]
	if !ok {
		v.fail("kubesvc.heartbeat.periodUnit", "must be a Java TimeUnit such as SECONDS, MILLISECONDS or MINUTES, got %q", f.PeriodUnit)
		unit = time.Second
	}
	h.InitialDelay = v.duration("kubesvc.heartbeat.initialDelay", f.InitialDelay, unit, false)
	h.Period = v.duration("kubesvc.heartbeat.period", orDefault(f.Period, DefaultHeartbeatPeriod), unit, true)
	return h
}

func (v *validator) cache(f *FileCache) Cache {
	ms := func(key string, p *int64, def time.Duration, positive bool) time.Duration {
		return v.duration(key, orDefault(p, int64(def/time.Millisecond)), time.Millisecond, positive)
	}
	secs := func(key string, p *int64, def time.Duration) time.Duration {
		return v.duration(key, orDefault(p, int64(def/time.Second)), time.Second, false)
	}
	c := Cache{
		OperationWait:               ms("kubesvc.cache.operationWaitMs", f.OperationWaitMs, DefaultOperationWait, true),
		OnDemandQuickWait:           ms("kubesvc.cache.onDemandQuickWaitMs", f.OnDemandQuickWaitMs, DefaultOnDemandQuickWait, false),
		AccountCleanupFrequency:     secs("kubesvc.cache.accountCleanupFrequencySeconds", f.AccountCleanupFrequencySeconds, DefaultAccountCleanupFrequency),
		EventsCleanupFrequency:      secs("kubesvc.cache.eventsCleanupFrequencySeconds", f.EventsCleanupFrequencySeconds, DefaultEventsCleanupFrequency),
		NamespaceExpiry:             v.duration("kubesvc.cache.namespaceExpiryMinutes", f.NamespaceExpiryMinutes, time.Minute, false),
		CleanDataWithUnusedAccounts: orDefault(f.CleanDataWithUnusedAccounts, true),
		CacheKinds:                  f.CacheKinds,
	}
	switch {
	case c.CacheKinds == nil:
		c.CacheKinds = slices.Clone(DefaultCacheKinds)
	case len(c.CacheKinds) == 0:
		v.fail("kubesvc.cache.cacheKinds", "must not be empty (leave it out for the default kinds)")
	}
	for i, kind := range c.CacheKinds {
		if strings.TrimSpace(kind) == "" {
			v.fail(fmt.Sprintf("kubesvc.cache.cacheKinds[%d]", i), "must not be empty")
		}
	}
	return c
}

func (v *validator) dynamicAccounts(f *FileDynamicAccounts) DynamicAccounts {
	d := DynamicAccounts{
		Enabled: f.Enabled,
		RetryFrequency: v.duration("kubesvc.dynamicAccounts.retryFrequencySeconds",
			int64(orDefault(f.RetryFrequencySeconds, int(DefaultRetryFrequency/time.Second))), time.Second, true),
		MaxRetries:         orDefault(f.MaxRetries, DefaultMaxRetries),
		ScanFrequency:      v.duration("kubesvc.dynamicAccounts.scanFrequencySeconds", int64(f.ScanFrequencySeconds), time.Second, false),
		ScanBatchSize:      f.ScanBatchSize,
		ClouddriverURL:     strings.TrimSpace(f.Interceptor.ClouddriverURL),
		NamePatterns:       v.patterns("kubesvc.dynamicAccounts.namePatterns", f.NamePatterns),
		InterceptorEnabled: f.Interceptor.Enabled,
		EncryptionKey:      f.EncryptionKey,
		EncryptionKeyFile:  f.EncryptionKeyFile,
	}
	v.nonNegative("kubesvc.dynamicAccounts.maxRetries", int64(d.MaxRetries))
	v.nonNegative("kubesvc.dynamicAccounts.scanBatchSize", int64(d.ScanBatchSize))
	if d.ScanFrequency == 0 {
		d.ScanFrequency = DefaultScanFrequency
	}
	if d.ScanBatchSize == 0 {
		d.ScanBatchSize = DefaultScanBatchSize
	}
	if u, err := url.Parse(d.ClouddriverURL); d.ClouddriverURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		v.fail("kubesvc.dynamicAccounts.interceptor.clouddriverUrl", "must be an absolute http or https URL, got %q", d.ClouddriverURL)
	}
	return d
}

// clouddriverDatabase is kubesvc.dynamicAccounts.clouddriverDatabase.*:
// the control plane's own database unless a driver is set.
func (v *validator) clouddriverDatabase(f *FileSQL, own SQL) SQL {
	const key = "kubesvc.dynamicAccounts.clouddriverDatabase"
	s := SQL{Driver: Driver(strings.ToLower(strings.TrimSpace(f.Driver))), Path: strings.TrimSpace(f.Path), DSN: v.dsn(key, f)}
	switch s.Driver {
	case "":
		if s.Path != "" || s.DSN != "" {
			v.fail(key+".driver", "required when %s.path or %s.dsn is set", key, key)
		}
		return own
	case DriverSQLite:
		if s.Path == "" {
			v.fail(key+".path", "required when %s.driver is sqlite", key)
		}
	case DriverMySQL, DriverPostgres:
		if s.DSN == "" {
			v.fail(key+".dsn", "required (or %s.dsnFile) when %s.driver is %s", key, key, s.Driver)
		}
	default:
		v.fail(key+".driver", "must be sqlite, mysql or postgres, got %q", f.Driver)
	}
	return s
}

func (v *validator) cluster(k *FileKubesvc) Cluster {
	ck := &k.ClusterKubernetes
	c := Cluster{
		Mode: ClusterMode(strings.ToLower(strings.TrimSpace(k.Cluster))),
		Kubernetes: ClusterKubernetesConfig{
			KubeconfigFile:               ck.KubeconfigFile,
			VerifySSL:                    orDefault(ck.VerifySsl, true),
			Namespace:                    strings.TrimSpace(ck.Namespace),
			HTTPPortName:                 strings.TrimSpace(ck.HTTPPortName),
			ClouddriverServiceNamePrefix: strings.TrimSpace(ck.ClouddriverServiceNamePrefix),
		},
	}
	switch c.Mode {
	case "":
		c.Mode = ClusterLocal
	case ClusterLocal, ClusterKubernetes, ClusterStatic:
	case "redis":
		v.fail("kubesvc.cluster", "redis clustering is not supported (it is deprecated in the plugin); use kubernetes")
	default:
		v.fail("kubesvc.cluster", "must be local, kubernetes or static, got %q", k.Cluster)
	}
	c.BaseURL = strings.TrimSpace(k.BaseURL)
	c.PeerCAFile, c.PeerServerName = strings.TrimSpace(k.PeerTLS.CAFile), strings.TrimSpace(k.PeerTLS.ServerName)
	if path := strings.TrimSpace(k.PeerSecretFile); path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err != nil:
			v.fail("kubesvc.peerSecretFile", "%v", err)
		case len(strings.TrimSpace(string(b))) < 16:
			v.fail("kubesvc.peerSecretFile", "the secret in %s is shorter than 16 characters", path)
		default:
			c.PeerSecret = strings.TrimSpace(string(b))
		}
	}
	if c.BaseURL != "" && !absoluteHTTPURL(c.BaseURL) {
		v.fail("kubesvc.baseUrl", "must be an absolute http or https URL, got %q", c.BaseURL)
	}
	for i, p := range k.ClusterStatic.Peers {
		key := fmt.Sprintf("kubesvc.cluster-static.peers[%d]", i)
		peer := Peer{ID: strings.TrimSpace(p.ID), BaseURL: strings.TrimSpace(p.BaseURL)}
		if peer.ID == "" {
			v.fail(key+".id", "required")
		}
		if !absoluteHTTPURL(peer.BaseURL) {
			v.fail(key+".baseUrl", "must be an absolute http or https URL, got %q", peer.BaseURL)
		}
		c.Static = append(c.Static, peer)
	}
	if c.Mode == ClusterStatic && len(c.Static) == 0 {
		v.fail("kubesvc.cluster-static.peers", "required when kubesvc.cluster is static")
	}
	if c.Kubernetes.HTTPPortName == "" {
		c.Kubernetes.HTTPPortName = DefaultHTTPPortName
	}
	if c.Kubernetes.ClouddriverServiceNamePrefix == "" {
		c.Kubernetes.ClouddriverServiceNamePrefix = DefaultServiceNamePrefix
	}
	return c
}

// dsn is f's DSN: dsn, or the content of dsnFile (trimmed); both set is
// an error.
func (v *validator) dsn(key string, f *FileSQL) string {
	dsn, file := strings.TrimSpace(f.DSN), strings.TrimSpace(f.DSNFile)
	if file == "" {
		return dsn
	}
	if dsn != "" {
		v.fail(key+".dsnFile", "set either %s.dsn or %s.dsnFile, not both", key, key)
		return dsn
	}
	b, err := os.ReadFile(file)
	if err != nil {
		v.fail(key+".dsnFile", "%v", err)
		return ""
	}
	if d := strings.TrimSpace(string(b)); d != "" {
		return d
	}
	v.fail(key+".dsnFile", "%s is empty", file)
	return ""
}

func (v *validator) sql(f *FileSQL) SQL {
	s := SQL{Driver: Driver(strings.ToLower(strings.TrimSpace(f.Driver))), Path: strings.TrimSpace(f.Path), DSN: v.dsn("sql", f)}
	switch s.Driver {
	case "":
		s.Driver = DriverSQLite
	case DriverSQLite, DriverMySQL, DriverPostgres:
	default:
		v.fail("sql.driver", "must be sqlite, mysql or postgres, got %q", f.Driver)
	}
	if s.Path == "" {
		s.Path = DefaultSQLitePath
	}
	if (s.Driver == DriverMySQL || s.Driver == DriverPostgres) && s.DSN == "" {
		v.fail("sql.dsn", "required (or sql.dsnFile) when sql.driver is %s", s.Driver)
	}
	return s
}

func (v *validator) logging(f *FileLogging) Logging {
	l := Logging{Level: slog.LevelInfo, Format: LogText}
	switch s := strings.ToLower(strings.TrimSpace(f.Level)); s {
	case "", "info":
	case "trace":
		l.Level = slog.LevelDebug - 4
	case "debug":
		l.Level = slog.LevelDebug
	case "warn", "warning":
		l.Level = slog.LevelWarn
	case "error":
		l.Level = slog.LevelError
	default:
		v.fail("logging.level", "must be one of trace, debug, info, warn, error; got %q", f.Level)
	}
	switch s := LogFormat(strings.ToLower(strings.TrimSpace(f.Format))); s {
	case "":
	case LogText, LogJSON:
		l.Format = s
	default:
		v.fail("logging.format", "must be text or json, got %q", f.Format)
	}
	return l
}

// absoluteHTTPURL reports whether s is an http or https URL with a host.
func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
