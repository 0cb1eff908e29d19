package cpconfig

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/yamlstrict"
)

func TestUnknownKeys(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"top level", "kubesvc: {}\nsqll: {}\n", `unknown key "sqll" (line 2); did you mean "sql"?`},
		{"top level, no hint", "redis: {enabled: true}\n", `unknown key "redis" (line 1)`},
		{"nested", "kubesvc:\n  grpc:\n    server:\n      prot: 9091\n", `unknown key "kubesvc.grpc.server.prot" (line 4); did you mean "port"?`},
		{"nested, no hint", "kubesvc:\n  cache:\n    size: 1\n", `unknown key "kubesvc.cache.size" (line 3)`},
		{"case", "kubesvc: {dynamicaccounts: {}}\n", `unknown key "kubesvc.dynamicaccounts" (line 1); did you mean "dynamicAccounts"?`},
		{"dotted", "\nkubesvc.grpc.sever.port: 1\n", `unknown key "kubesvc.grpc.sever.port" (line 2); did you mean "server"?`},
		{"spring logger levels", "logging.level.io.armory: DEBUG\n", `logging.level: expected a string, got a mapping (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, err := loadString(t, tt.yaml)
			if want := "config " + p + ": " + tt.want; err == nil || err.Error() != want {
				t.Fatalf("err  = %v\nwant = %s", err, want)
			}
			var ke *yamlstrict.KeyError
			if !errors.As(err, &ke) || ke.File != p || ke.Line == 0 {
				t.Errorf("KeyError = %+v", ke)
			}
			if strings.HasPrefix(tt.want, "unknown key") && !errors.Is(err, yamlstrict.ErrUnknownKey) {
				t.Errorf("error does not wrap ErrUnknownKey")
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, p, err := loadString(t, "a: 1\nkubesvc:\n  b: 2\nserver: {port: x}\nsql: {driver: oracle}\n")
	if err == nil {
		t.Fatal("no error")
	}
	// Decoding errors stop the load before validation.
	for _, want := range []string{
		"config " + p + `: unknown key "a" (line 1)`,
		"config " + p + `: unknown key "kubesvc.b" (line 3)`,
		"config " + p + `: server.port: expected an integer, got "x" (line 4)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%s", want, err)
		}
	}
	_, _, err = loadString(t, "server: {port: 0}\nsql: {driver: oracle}\n")
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want two validation errors, got %v", err)
	}
}

// Every file's keys that cannot be read are reported, not the first file's.
func TestAllFilesErrorsReported(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yml", "kubesvc: {b: 1}\n")
	b := writeFile(t, dir, "b.yml", "server: {port: x}\n")
	_, err := Load(a, b)
	for _, want := range []string{
		"config " + a + `: unknown key "kubesvc.b" (line 1)`,
		"config " + b + `: server.port: expected an integer, got "x" (line 1)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

func TestTypeErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"kubesvc: {grpc: {server: {healthServiceEnabled: maybe}}}\n", `kubesvc.grpc.server.healthServiceEnabled: expected a boolean (true or false), got "maybe" (line 1)`},
		{"kubesvc: {grpc: {server: {maxInboundMessageSize: 4XB}}}\n", `kubesvc.grpc.server.maxInboundMessageSize: expected a data size such as 4MB, 16MiB or a number of bytes, got "4XB" (line 1)`},
		{"kubesvc: {grpc: {server: {maxInboundMessageSize: [4]}}}\n", `kubesvc.grpc.server.maxInboundMessageSize: expected a data size such as 4MB, 16MiB or a number of bytes, got a list (line 1)`},
		{"kubesvc: {grpc: {server: {maxInboundMessageSize: 1.5}}}\n", `kubesvc.grpc.server.maxInboundMessageSize: expected a data size such as 4MB, 16MiB or a number of bytes, got "1.5" (line 1)`},
		{"kubesvc: {cache: {operationWaitMs: 30s}}\n", `kubesvc.cache.operationWaitMs: expected an integer, got "30s" (line 1)`},
		{"kubesvc: {dynamicAccounts: {namePatterns: '^a'}}\n", `kubesvc.dynamicAccounts.namePatterns: expected a list, got "^a" (line 1)`},
		{"kubesvc: [a]\n", `kubesvc: expected a mapping, got a list (line 1)`},
		{"kubesvc: {cluster: {mode: local}}\n", `kubesvc.cluster: expected a string, got a mapping (line 1)`},
		{"server: {port: 1}\nserver: {port: 2}\n", `server: set twice (also on line 1) (line 2)`},
		{"server: {port: 1}\nserver.port: 2\n", `server.port: set twice (also on line 1) (line 2)`},
		{"kubesvc: {grpc: {server: {security: {KeepAliveTimeOutSeconds: 1, keepAliveTimeOutSeconds: 2}}}}\n",
			`kubesvc.grpc.server.security.KeepAliveTimeOutSeconds: set twice (also on line 1) (line 1)`},
		{"- a\n", `top level must be a mapping of keys (line 1)`},
	}
	for _, tt := range tests {
		_, p, err := loadString(t, tt.yaml)
		if err == nil || err.Error() != "config "+p+": "+tt.want {
			t.Errorf("%q:\n err = %v\nwant = config %s: %s", tt.yaml, err, p, tt.want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	g := "kubesvc.grpc.server."
	tests := []struct{ yaml, want string }{
		{"server: {port: 0}\n", "server.port: must be a port number between 1 and 65535, got 0 (line 1)"},
		{"server: {port: 65536}\n", "server.port: must be a port number between 1 and 65535, got 65536 (line 1)"},
		{"server: {address: '0.0.0.0:7002'}\n", `server.address: must be a host name or an IP address without a port, got "0.0.0.0:7002" (line 1)`},
		{"kubesvc: {grpc: {server: {port: -1}}}\n", g + "port: must be a port number between 1 and 65535, got -1 (line 1)"},
		{"kubesvc: {grpc: {server: {address: '[::1]'}}}\n", g + `address: must be a host name or an IP address without a port, got "[::1]" (line 1)`},
		{"kubesvc: {grpc: {server: {maxInboundMessageSize: 1KB}}}\n", g + "maxInboundMessageSize: must be between 64KB and 2GB (65536 to 2147483647 bytes), got 1KB (line 1)"},
		{"kubesvc: {grpc: {server: {maxInboundMessageSize: 2GB}}}\n", g + "maxInboundMessageSize: must be between 64KB and 2GB (65536 to 2147483647 bytes), got 2GB (line 1)"},
		{"kubesvc: {grpc: {server: {keepalive: {minTimeSeconds: 0}}}}\n", g + "keepalive.minTimeSeconds: must be positive, got 0 (line 1)"},
		{"kubesvc: {grpc: {server: {security: {keepAliveHeartbeatSeconds: -1}}}}\n", g + "security.keepAliveHeartbeatSeconds: must not be negative, got -1 (line 1)"},
		{"kubesvc: {grpc: {server: {security: {keepAliveTimeOutSeconds: -1}}}}\n", g + "security.KeepAliveTimeOutSeconds: must not be negative, got -1 (line 1)"},
		{"kubesvc: {grpc: {server: {security: {clientAuth: WANT}}}}\n", g + `security.clientAuth: must be NONE, OPTIONAL or REQUIRE, got "WANT" (line 1)`},
		{"kubesvc: {grpc: {auth: {x509: {enabled: true, filters: [x]}}}}\n",
			"kubesvc.grpc.auth.x509.enabled: needs kubesvc.grpc.server.security.enabled: true (subjects come from client certificates) (line 1)"},
		{"kubesvc: {grpc: {auth: {x509: {filters: ['UID=(']}}}}\n", "kubesvc.grpc.auth.x509.filters[0]: invalid regular expression: error parsing regexp: missing closing ): `UID=(` (line 1)"},
		{"kubesvc: {agentTimeoutSeconds: 0}\n", "kubesvc.agentTimeoutSeconds: must be positive, got 0 (line 1)"},
		{"kubesvc: {heartbeat: {periodUnit: FORTNIGHTS}}\n", `kubesvc.heartbeat.periodUnit: must be a Java TimeUnit such as SECONDS, MILLISECONDS or MINUTES, got "FORTNIGHTS" (line 1)`},
		{"kubesvc: {heartbeat: {period: 0}}\n", "kubesvc.heartbeat.period: must be positive, got 0 (line 1)"},
		{"kubesvc: {heartbeat: {initialDelay: -1}}\n", "kubesvc.heartbeat.initialDelay: must not be negative, got -1 (line 1)"},
		{"kubesvc: {heartbeat: {period: 10, periodUnit: MINUTES}}\n", "kubesvc.heartbeat.period: must be shorter than kubesvc.cache.accountCleanupFrequencySeconds (10m0s), or accounts are cleaned up while their agents are connected; got 10m0s (line 1)"},
		{"kubesvc: {heartbeat: {period: 9223372036854775807, periodUnit: DAYS}}\n", "kubesvc.heartbeat.period: 9223372036854775807 is too large (line 1)"},
		{"kubesvc: {cache: {operationWaitMs: 0}}\n", "kubesvc.cache.operationWaitMs: must be positive, got 0 (line 1)"},
		{"kubesvc: {cache: {onDemandQuickWaitMs: -1}}\n", "kubesvc.cache.onDemandQuickWaitMs: must not be negative, got -1 (line 1)"},
		{"kubesvc: {cache: {accountCleanupFrequencySeconds: -1}}\n", "kubesvc.cache.accountCleanupFrequencySeconds: must not be negative, got -1 (line 1)"},
		{"kubesvc: {cache: {eventsCleanupFrequencySeconds: -1}}\n", "kubesvc.cache.eventsCleanupFrequencySeconds: must not be negative, got -1 (line 1)"},
		{"kubesvc: {cache: {namespaceExpiryMinutes: -1}}\n", "kubesvc.cache.namespaceExpiryMinutes: must not be negative, got -1 (line 1)"},
		{"kubesvc: {cache: {cacheKinds: []}}\n", "kubesvc.cache.cacheKinds: must not be empty (leave it out for the default kinds) (line 1)"},
		{"kubesvc: {cache: {cacheKinds: [Pod, ' ']}}\n", "kubesvc.cache.cacheKinds[1]: must not be empty (line 1)"},
		{"kubesvc: {dynamicAccounts: {retryFrequencySeconds: 0}}\n", "kubesvc.dynamicAccounts.retryFrequencySeconds: must be positive, got 0 (line 1)"},
		{"kubesvc: {dynamicAccounts: {maxRetries: -1}}\n", "kubesvc.dynamicAccounts.maxRetries: must not be negative, got -1 (line 1)"},
		{"kubesvc: {dynamicAccounts: {scanFrequencySeconds: -1}}\n", "kubesvc.dynamicAccounts.scanFrequencySeconds: must not be negative, got -1 (line 1)"},
		{"kubesvc: {dynamicAccounts: {scanBatchSize: -1}}\n", "kubesvc.dynamicAccounts.scanBatchSize: must not be negative, got -1 (line 1)"},
		{"kubesvc:\n  dynamicAccounts:\n    namePatterns:\n      - ok\n      - ''\n", "kubesvc.dynamicAccounts.namePatterns[1]: must not be empty (line 5)"},
		{"kubesvc: {dynamicAccounts: {namePatterns: ['(?=x)']}}\n", "kubesvc.dynamicAccounts.namePatterns[0]: invalid regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?=` (line 1)"},
		{"kubesvc: {dynamicAccounts: {namePatterns: ['^ok', 'a[b']}}\n", "kubesvc.dynamicAccounts.namePatterns[1]: invalid regular expression: error parsing regexp: missing closing ]: `[b` (line 1)"},
		{"kubesvc: {dynamicAccounts: {interceptor: {clouddriverUrl: 'spin-clouddriver:7002'}}}\n", `kubesvc.dynamicAccounts.interceptor.clouddriverUrl: must be an absolute http or https URL, got "spin-clouddriver:7002" (line 1)`},
		{"kubesvc: {dynamicAccounts: {clouddriverDatabase: {driver: oracle}}}\n", `kubesvc.dynamicAccounts.clouddriverDatabase.driver: must be sqlite, mysql or postgres, got "oracle" (line 1)`},
		{"kubesvc: {dynamicAccounts: {clouddriverDatabase: {driver: mysql}}}\n", "kubesvc.dynamicAccounts.clouddriverDatabase.dsn: required (or kubesvc.dynamicAccounts.clouddriverDatabase.dsnFile) when kubesvc.dynamicAccounts.clouddriverDatabase.driver is mysql (line 1)"},
		{"kubesvc: {dynamicAccounts: {clouddriverDatabase: {dsn: 'u@tcp(db)/clouddriver'}}}\n", "kubesvc.dynamicAccounts.clouddriverDatabase.driver: required when kubesvc.dynamicAccounts.clouddriverDatabase.path or kubesvc.dynamicAccounts.clouddriverDatabase.dsn is set (line 1)"},
		{"kubesvc: {cluster: redis}\n", "kubesvc.cluster: redis clustering is not supported (it is deprecated in the plugin); use kubernetes (line 1)"},
		{"kubesvc: {cluster: swarm}\n", `kubesvc.cluster: must be local, kubernetes or static, got "swarm" (line 1)`},
		{"kubesvc: {peerSecretFile: /nonexistent/secret}\n", "kubesvc.peerSecretFile: open /nonexistent/secret: no such file or directory (line 1)"},
		{"kubesvc: {cluster: static, cluster-static: {peers: [{id: '', baseUrl: 'http://10.0.0.1:7002'}]}}\n", "kubesvc.cluster-static.peers[0].id: required (line 1)"},
		{"kubesvc: {jobs: {operation-history: {purge: {weeks: -1}}}}\n", "kubesvc.jobs.operation-history.purge.weeks: must not be negative, got -1 (line 1)"},
		{"sql: {driver: oracle}\n", `sql.driver: must be sqlite, mysql or postgres, got "oracle" (line 1)`},
		{"sql: {driver: mysql}\n", "sql.dsn: required (or sql.dsnFile) when sql.driver is mysql (line 1)"},
		{"sql:\n  driver: postgres\n  dsn: ' '\n", "sql.dsn: required (or sql.dsnFile) when sql.driver is postgres (line 3)"},
		{"logging: {level: verbose}\n", `logging.level: must be one of trace, debug, info, warn, error; got "verbose" (line 1)`},
		{"logging: {format: xml}\n", `logging.format: must be text or json, got "xml" (line 1)`},
	}
	for _, tt := range tests {
		_, p, err := loadString(t, tt.yaml)
		if err == nil || err.Error() != "config "+p+": "+tt.want {
			t.Errorf("%s\n err = %v\nwant = config %s: %s", tt.yaml, err, p, tt.want)
		}
	}
}

func TestTLSRequiresCertificates(t *testing.T) {
	_, p, err := loadString(t, "kubesvc: {grpc: {server: {security: {enabled: true}}}}\n")
	for _, want := range []string{
		"config " + p + ": kubesvc.grpc.server.security.certificateChain: required when security is enabled (line 1)",
		"config " + p + ": kubesvc.grpc.server.security.privateKey: required when security is enabled (line 1)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

func TestTLSErrors(t *testing.T) {
	const tlsOn = "kubesvc:\n  grpc:\n    server:\n      security: {enabled: true, certificateChain: file:/c.pem, privateKey: file:/k.pem%s}\n%s"
	tests := []struct{ extra, auth, want string }{
		{", protocols: 'TLSv1.1,TLSv1.2'", "", "kubesvc.grpc.server.security.protocols: TLSv1.1 is deprecated and not supported; use TLSv1.2 or TLSv1.3 (line 4)"},
		{", protocols: SSLv9", "", `kubesvc.grpc.server.security.protocols: unknown protocol "SSLv9" (TLSv1.2 or TLSv1.3) (line 4)`},
		{", ciphers: [TLS_RSA_WITH_RC4_128_SHA]", "", "kubesvc.grpc.server.security.ciphers: cipher suite TLS_RSA_WITH_RC4_128_SHA is insecure and not supported (line 4)"},
		{", clientAuth: maybe", "", `kubesvc.grpc.server.security.clientAuth: must be NONE, OPTIONAL or REQUIRE, got "maybe" (line 4)`},
		{"", "    auth: {x509: {enabled: true, filters: [CN=agent]}}\n",
			"kubesvc.grpc.auth.x509.enabled: needs kubesvc.grpc.server.security.clientAuth OPTIONAL or REQUIRE: with NONE no client certificate is asked for (line 5)"},
		{", clientAuth: REQUIRE, trustCertCollection: /ca.pem", "    auth: {x509: {enabled: true}}\n",
			"kubesvc.grpc.auth.x509.filters: at least one filter is required when x509 filtering is enabled"},
		{", clientAuth: OPTIONAL", "", "kubesvc.grpc.server.security.trustCertCollection: required when clientAuth is OPTIONAL"},
	}
	for _, tt := range tests {
		y := fmt.Sprintf(tlsOn, tt.extra, tt.auth)
		_, p, err := loadString(t, y)
		if err == nil || !strings.Contains(err.Error(), "config "+p+": "+tt.want) {
			t.Errorf("%s\n err = %v\nwant = config %s: %s", y, err, p, tt.want)
		}
	}
	for _, tt := range []struct{ yaml, want string }{
		{"server: {ssl: {enabled: true}}\n", "server.ssl.certificate: required when server.ssl.enabled is true"},
		{"server: {ssl: {enabled: true}}\n", "server.ssl.certificate-private-key: required when server.ssl.enabled is true"},
		{"server: {ssl: {enabled: true, certificate: /c, certificate-private-key: /k, client-auth: need}}\n", "server.ssl.trust-certificate: required when client-auth is need"},
		{"server: {ssl: {client-auth: always}}\n", `server.ssl.client-auth: must be none, want or need, got "always"`},
		{"server: {ssl: {enabled: true, certificate: /c, certificate-private-key: /k, enabled-protocols: [TLSv1]}}\n", "server.ssl.enabled-protocols: TLSv1 is deprecated"},
		{"server: {ssl: {enabled: true, certificate: /c, certificate-private-key: /k}}\nkubesvc: {baseUrl: 'http://cp-1:7002'}\n", `kubesvc.baseUrl: must be an https URL when server.ssl.enabled is true, got "http://cp-1:7002"`},
		{"kubesvc: {baseUrl: 'https://cp-1:7002'}\n", `kubesvc.baseUrl: is https but server.ssl.enabled is false`},
		{"kubesvc: {cluster: static, cluster-static: {peers: [{id: a, baseUrl: 'https://a:7002'}]}}\n", "kubesvc.cluster-static.peers[0].baseUrl: is https but server.ssl.enabled is false"},
		{"kubesvc: {peerTls: {serverName: cp}}\n", "kubesvc.peerTls: needs server.ssl.enabled: true"},
		{"kubesvc: {proxy: {enabled: true, x509: {filters: ['^CN=a$']}}}\n", "kubesvc.proxy.x509.filters: needs server.ssl.enabled: true and server.ssl.client-auth want or need"},
		{"server: {ssl: {enabled: true, certificate: /c, certificate-private-key: /k}}\nkubesvc: {proxy: {x509: {filters: ['^CN=a$']}}}\n", "kubesvc.proxy.x509.filters: needs server.ssl.enabled: true and server.ssl.client-auth want or need"},
		{"server: {ssl: {enabled: true, certificate: /c, certificate-private-key: /k, trust-certificate: /t, client-auth: need}}\nkubesvc: {proxy: {x509: {filters: ['(?=x)']}}}\n", "kubesvc.proxy.x509.filters"},
		// A certificate without enabled means TLS, as in Spring Boot.
		{"server: {ssl: {certificate: /c, client-auth: need}}\n", "server.ssl.certificate-private-key: required when server.ssl.enabled is true"},
		{"server: {ssl: {enabled: true, certificate: /c, certificate-private-key: /k, ciphers: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]}}\n", "server.ssl.ciphers: must include TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
	} {
		_, p, err := loadString(t, tt.yaml)
		if err == nil || !strings.Contains(err.Error(), "config "+p+": "+tt.want) {
			t.Errorf("%s\n err = %v\nwant = config %s: %s", tt.yaml, err, p, tt.want)
		}
	}
	// accountCleanupFrequencySeconds 0 is the default, 600 s: a day-long
	// heartbeat would let connected accounts be cleaned up.
	if _, p, err := loadString(t, "kubesvc: {heartbeat: {period: 1, periodUnit: DAYS}, cache: {accountCleanupFrequencySeconds: 0}}\n"); err == nil ||
		!strings.Contains(err.Error(), "config "+p+": kubesvc.heartbeat.period: must be shorter than kubesvc.cache.accountCleanupFrequencySeconds (10m0s)") {
		t.Errorf("cleanup 0 (the default) with a day-long heartbeat: err = %v", err)
	}
	if c := mustLoad(t, "kubesvc: {jobs: {operation-history: {purge: {weeks: 0}}}}\n"); c.OperationHistoryRetention != 7*24*time.Hour {
		t.Errorf("purge.weeks 0: retention %s, want the default week", c.OperationHistoryRetention)
	}
	if c := mustLoad(t, "server: {ssl: {certificate: /c, certificate-private-key: /k}}\n"); !c.Server.SSL.Enabled {
		t.Error("server.ssl with a certificate and no enabled key: TLS off, want on")
	}
	if c := mustLoad(t, "server: {ssl: {enabled: false, certificate: /c}}\n"); c.Server.SSL.Enabled {
		t.Error("server.ssl.enabled: false: TLS on")
	}
	mustLoad(t, "server: {ssl: {certificate: /c, certificate-private-key: /k, enabled-protocols: [TLSv1.3], ciphers: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]}}\n")
	_, p, err := loadString(t, "kubesvc: {grpc: {auth: {x509: {enabled: true, filters: [x]}}}}\n")
	if want := "config " + p + ": kubesvc.grpc.auth.x509.enabled: needs kubesvc.grpc.server.security.enabled: true"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("x509 without TLS: err = %v, want %q", err, want)
	}
}

func TestValidCombinations(t *testing.T) {
	for _, y := range []string{
		"kubesvc: {grpc: {server: {address: 0.0.0.0, maxInboundMessageSize: 64KB}}}\n",
		"kubesvc: {grpc: {server: {address: 'fe80::1', maxInboundMessageSize: '2147483647'}}}\n",
		"server: {address: localhost, port: 65535}\n",
		"kubesvc: {heartbeat: {enabled: false, period: 1, periodUnit: hours}}\n",
		"kubesvc: {heartbeat: {period: 1, periodUnit: DAYS}, cache: {accountCleanupFrequencySeconds: 172800}}\n",
		"kubesvc: {cluster: static, cluster-static: {peers: [{id: a, baseUrl: 'http://10.0.0.1:7002'}]}, agentTimeoutSeconds: 1}\n",
		"kubesvc: {grpc: {auth: {x509: {filters: ['UID=([a-z]){3}:[1-9]{3}:ksvc']}}}}\n",
		"sql: {driver: SQLite, dsn: ignored}\n",
		"logging: {level: ERROR, format: TEXT}\n",
	} {
		if _, _, err := loadString(t, y); err != nil {
			t.Errorf("%s\n err = %v", y, err)
		}
	}
}
