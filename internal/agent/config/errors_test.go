package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"top level", "clouddriver: {}\nkubernetez: {}\n",
			`unknown key "kubernetez" (line 2); did you mean "kubernetes"?`},
		{"nested", "clouddriver:\n  tls:\n    cacert: /x\n",
			`unknown key "clouddriver.tls.cacert" (line 3)`},
		{"account item", `kubernetes:
  accounts:
    - name: a
      serviceAccount: true
    - name: b
      serviceAccount: true
      kindz: [pod]
`, `unknown key "kubernetes.accounts[1].kindz" (line 7); did you mean "kinds"?`},
		{"crd item", "kubernetes:\n  accounts:\n    - name: a\n      serviceAccount: true\n      customResourceDefinitions:\n        - {kind: A.b, group: x}\n",
			`unknown key "kubernetes.accounts[0].customResourceDefinitions[0].group" (line 6)`},
		{"case", "Clouddriver: {}\n", `unknown key "Clouddriver" (line 1); did you mean "clouddriver"?`},
		{"no hint", "zzz: 1\n", `unknown key "zzz" (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, err := loadString(t, tt.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			if want := "config " + p + ": " + tt.want; err.Error() != want {
				t.Errorf("err  = %s\nwant = %s", err, want)
			}
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("error does not wrap ErrUnknownKey")
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.File != p || ke.Line == 0 {
				t.Errorf("KeyError = %+v", ke)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, p, err := loadString(t, "a: 1\nclouddriver:\n  b: 2\nserver: {port: x}\n")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"config " + p + `: unknown key "a" (line 1)`,
		"config " + p + `: unknown key "clouddriver.b" (line 3)`,
		"config " + p + `: server.port: expected an integer, got "x" (line 4)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%s", want, err)
		}
	}
}

// Every file's keys that cannot be read are reported, not the first file's.
func TestAllFilesErrorsReported(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", "clouddriver: {b: 1}\n")
	b := writeFile(t, dir, "b.yaml", "server: {port: x}\n")
	_, err := Load(Source{Path: a}, Source{Path: b})
	for _, want := range []string{
		"config " + a + `: unknown key "clouddriver.b" (line 1)`,
		"config " + b + `: server.port: expected an integer, got "x" (line 1)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

func TestTypeErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"clouddriver: {insecure: maybe}\n", `clouddriver.insecure: expected a boolean (true or false), got "maybe" (line 1)`},
		{"clouddriver:\n  backoff:\n    multiplier: fast\n", `clouddriver.backoff.multiplier: expected a number, got "fast" (line 3)`},
		{"clouddriver: {backoff: {baseDelay: 1s}}\n", `clouddriver.backoff.baseDelay: expected an integer, got "1s" (line 1)`},
		{"clouddriver: [a]\n", `clouddriver: expected a mapping, got a list (line 1)`},
		{"clouddriver: {grpc: {host: x}}\n", `clouddriver.grpc: expected a string, got a mapping (line 1)`},
		{"kubernetes: {accounts: {name: a}}\n", `kubernetes.accounts: expected a list, got a mapping (line 1)`},
		{"kubernetes:\n  accounts:\n    - name: a\n      namespaces: ns1\n", `kubernetes.accounts[0].namespaces: expected a list, got "ns1" (line 4)`},
		{"kubernetes:\n  accounts:\n    - name: a\n      permissions: [READ]\n", `kubernetes.accounts[0].permissions[0]: expected a mapping such as READ: [role1, role2] (line 4)`},
		{"kubernetes:\n  accounts:\n    - name: a\n      permissions: {READ: r}\n", `kubernetes.accounts[0].permissions.READ: expected a list, got "r" (line 4)`},
		{"tasks: {totalBudget: 1.5}\n", `tasks.totalBudget: expected an integer, got "1.5" (line 1)`},
		{"server: {port: 1}\nserver: {port: 2}\n", `server: set twice (also on line 1) (line 2)`},
		{"- a\n", `top level must be a mapping of keys (line 1)`},
		{"a: 1\n---\nb: 2\n", `more than one YAML document (line 2)`},
	}
	for _, tt := range tests {
		_, p, err := loadString(t, tt.yaml)
		if err == nil || err.Error() != "config "+p+": "+tt.want {
			t.Errorf("%q:\n err = %v\nwant = config %s: %s", tt.yaml, err, p, tt.want)
		}
	}
	// Syntax errors come from the YAML parser, prefixed with the file.
	_, p, err := loadString(t, "a: [\n")
	if err == nil || !strings.HasPrefix(err.Error(), "config "+p+": yaml: ") {
		t.Errorf("syntax error: %v", err)
	}
}

// account wraps account lines (indented by 6) into a one-account file.
func account(lines ...string) string {
	return "kubernetes:\n  accounts:\n    - name: a\n" + indent(lines)
}

func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "      %s\n", l)
	}
	return b.String()
}

func TestValidationErrors(t *testing.T) {
	acc := "kubernetes.accounts[0]."
	tests := []struct{ yaml, want string }{
		{"kubernetes:\n  accounts:\n    - kubeconfigFile: /k\n", acc + "name: required (line 3)"},
		{"kubernetes:\n  accounts:\n    - {name: a, serviceAccount: true}\n    - {name: a, kubeconfigFile: /k}\n",
			`kubernetes.accounts[1].name: "a" is already used by kubernetes.accounts[0] (line 4)`},
		{"kubernetes:\n  accounts:\n    - {name: 'prod eu', serviceAccount: true}\n", acc + `name: "prod eu": only printable ASCII without spaces or '/' (' ' at byte 4) (line 3)`},
		{"kubernetes:\n  accounts:\n    - {name: café, serviceAccount: true}\n", acc + `name: "café": only printable ASCII without spaces or '/' (a non-ASCII character at byte 3) (line 3)`},
		{"agent: {id: a/b}\n", `agent.id: "a/b": only printable ASCII without spaces or '/' ('/' at byte 1) (line 1)`},
		{account("kubeconfigFile: /k", "serviceAccount: true"), acc + "serviceAccount: cannot be combined with kubeconfigFile; set exactly one of them (line 5)"},
		{account("context: x"), acc + "kubeconfigFile: required unless serviceAccount is true; set exactly one of them (line 3)"},
		{account("serviceAccount: true", "context: x"), acc + "context: applies to kubeconfigFile only, not to serviceAccount (line 5)"},
		{account("serviceAccount: true", "namespaces: [a]", "omitNamespaces: [b]"), acc + "omitNamespaces: cannot be combined with namespaces (line 6)"},
		{account("serviceAccount: true", "onlyNamespacedResources: true"), acc + "onlyNamespacedResources: requires namespaces (line 5)"},
		{account("serviceAccount: true", "kinds: [pod, Deployment]", "omitKinds: [secret, deployment]"), acc + `omitKinds[1]: kind "deployment" is also listed in kinds (line 6)`},
		{account("serviceAccount: true", "namespaces: [a, '']"), acc + "namespaces[1]: must not be empty (line 5)"},
		{account("serviceAccount: true", "maxResumableResourceAgeMs: -1"), acc + "maxResumableResourceAgeMs: must not be negative, got -1 (line 5)"},
		{account("serviceAccount: true", "customResourceDefinitions: [{scope: Cluster}]"), acc + `customResourceDefinitions[0].kind: must be Kind.group, e.g. ServiceMonitor.monitoring.coreos.com, got "" (line 5)`},
		{account("serviceAccount: true", "customResourceDefinitions: [{kind: ServiceMonitor}]"), acc + `customResourceDefinitions[0].kind: must be Kind.group, e.g. ServiceMonitor.monitoring.coreos.com, got "ServiceMonitor" (line 5)`},
		{account("serviceAccount: true", "customResourceDefinitions: [{kind: A.b, scope: Global}]"), acc + `customResourceDefinitions[0].scope: must be Namespaced or Cluster, got "Global" (line 5)`},
		{account("serviceAccount: true", "permissions: [{EXECUTE: [a]}]"), acc + "permissions.EXECUTE: permission must be READ or WRITE (line 5)"},
		{account("serviceAccount: true", "permissions: [{READ: ['role 1']}]"), acc + `permissions.READ[0]: role "role 1" must be non-empty and contain no whitespace (line 5)`},
		{"clouddriver: {grpc: ' '}\n", "clouddriver.grpc: must not be empty (line 1)"},
		{"clouddriver: {keepAliveHeartbeatSeconds: -1}\n", "clouddriver.keepAliveHeartbeatSeconds: must not be negative, got -1000000000 (line 1)"},
		{"clouddriver: {keepAliveTimeOutSeconds: -1}\n", "clouddriver.keepAliveTimeOutSeconds: must not be negative, got -1 (line 1)"},
		{"clouddriver: {keepAliveOperationSeconds: -1}\n", "clouddriver.keepAliveOperationSeconds: must not be negative, got -1 (line 1)"},
		{"clouddriver: {backoff: {baseDelay: 0}}\n", "clouddriver.backoff.baseDelay: must be positive (nanoseconds), got 0 (line 1)"},
		{"clouddriver: {backoff: {multiplier: 0.5}}\n", "clouddriver.backoff.multiplier: must be at least 1, got 0.5 (line 1)"},
		{"clouddriver: {backoff: {jitter: 1.5}}\n", "clouddriver.backoff.jitter: must be between 0 and 1, got 1.5 (line 1)"},
		{"clouddriver: {backoff: {maxDelay: 10}}\n", "clouddriver.backoff.maxDelay: must not be less than baseDelay (1000000000), got 10 (line 1)"},
		{"clouddriver: {responseRetries: {maxRetries: -1}}\n", "clouddriver.responseRetries.maxRetries: must not be negative, got -1 (line 1)"},
		{"clouddriver: {responseRetries: {backOffMs: -1}}\n", "clouddriver.responseRetries.backOffMs: must not be negative, got -1000000 (line 1)"},
		{"clouddriver: {tls: {clientKeyFile: /k}}\n", "clouddriver.tls.clientKeyFile: requires clouddriver.tls.clientCertFile (line 1)"},
		{"clouddriver: {auth: {token: t, tokenCommand: {command: c}}}\n", "clouddriver.auth.tokenCommand: cannot be combined with clouddriver.auth.token (line 1)"},
		{"clouddriver: {auth: {tokenCommand: {args: [a]}}}\n", "clouddriver.auth.tokenCommand.command: required when other tokenCommand keys are set (line 1)"},
		{"clouddriver: {auth: {tokenCommand: {command: c, format: xml}}}\n", `clouddriver.auth.tokenCommand.format: must be json or raw, got "xml" (line 1)`},
		{"kubernetes: {reconnectTimeoutMs: -1}\n", "kubernetes.reconnectTimeoutMs: must not be negative, got -1000000 (line 1)"},
		{"kubernetes: {cacheGroupSize: -1}\n", "kubernetes.cacheGroupSize: must not be negative, got -1 (line 1)"},
		{"kubernetes: {cacheGroupDelayMs: -1}\n", "kubernetes.cacheGroupDelayMs: must not be negative, got -1000000 (line 1)"},
		{"kubernetes: {retries: {maxRetries: -1}}\n", "kubernetes.retries.maxRetries: must not be negative, got -1 (line 1)"},
		{"kubernetes: {retries: {backOffMs: -1}}\n", "kubernetes.retries.backOffMs: must not be negative, got -1000000 (line 1)"},
		{"kubernetes: {serverSideApply: {enabled: sometimes}}\n", `kubernetes.serverSideApply.enabled: must be always, never or allowed, got "sometimes" (line 1)`},
		{"kubernetes: {serverSideApply: {kinds: [{enabled: never}]}}\n", "kubernetes.serverSideApply.kinds[0].kind: required (line 1)"},
		{"kubernetes: {serverSideApply: {kinds: [{kind: Pod}, {kind: pod}]}}\n", `kubernetes.serverSideApply.kinds[1].kind: "pod" is already configured in kinds[0] (line 1)`},
		{"kubernetes: {serverSideApply: {kinds: [{kind: Pod, manifestDefaults: x}]}}\n", `kubernetes.serverSideApply.kinds[0].manifestDefaults: must be always, never or allowed, got "x" (line 1)`},
		{"tasks: {totalBudget: -1}\n", "tasks.totalBudget: must not be negative, got -1 (line 1)"},
		{"tasks: {budgetPerAccount: -1}\n", "tasks.budgetPerAccount: must not be negative, got -1 (line 1)"},
		{"server: {port: 0}\n", "server.port: must be a port number between 1 and 65535, got 0 (line 1)"},
		{"prometheus: {port: 70000}\n", "prometheus.port: must be a port number between 1 and 65535, got 70000 (line 1)"},
		{"pprof: {enabled: true, port: 8082}\n", "pprof.port: 8082 is also server.port or prometheus.port: give the profiles a port of their own (line 1)"},
		{"pprof: {port: -1}\n", "pprof.port: must be a port number between 1 and 65535, got -1 (line 1)"},
		{"logging: {format: xml}\n", `logging.format: must be text or json, got "xml" (line 1)`},
		{"logging: {level: verbose}\n", `logging.level: must be one of panic, fatal, error, warn, warning, info, debug, trace; got "verbose" (line 1)`},
		{"timeoutSeconds: -1\n", "timeoutSeconds: must not be negative, got -1 (line 1)"},
	}
	for _, tt := range tests {
		_, p, err := loadString(t, tt.yaml)
		if err == nil || err.Error() != "config "+p+": "+tt.want {
			t.Errorf("%s\n err = %v\nwant = config %s: %s", tt.yaml, err, p, tt.want)
		}
	}
}

func TestValidCombinations(t *testing.T) {
	for _, y := range []string{
		account("serviceAccount: true", "kinds: [pod]", "omitKinds: [secret]"),
		account("kubeconfigFile: /k", "context: c", "namespaces: [a]", "onlyNamespacedResources: true"),
		account("kubeConfigFile: /k", "omitNamespaces: [kube-system]"),
		account("serviceAccount: true", "maxResumableResourceAgeMs: 0"),
		"clouddriver: {auth: {tokenCommand: {command: /bin/token, args: [-x], format: RAW, refreshIntervalSeconds: 60}}}\n",
		"clouddriver: {backoff: {baseDelay: 5000000000, maxDelay: 5000000000}}\n",
	} {
		if _, _, err := loadString(t, y); err != nil {
			t.Errorf("%s\n err = %v", y, err)
		}
	}
}

func TestNullValueLines(t *testing.T) {
	// A key set to null is located at its own line, not its parent's.
	for y, want := range map[string]string{
		account("serviceAccount: true", "namespaces:", "  - x", "  - ~"):        "kubernetes.accounts[0].namespaces[1]: must not be empty (line 7)",
		"kubernetes:\n  accounts:\n    - serviceAccount: true\n      name: ~\n": "kubernetes.accounts[0].name: required (line 4)",
	} {
		_, p, err := loadString(t, y)
		if err == nil || err.Error() != "config "+p+": "+want {
			t.Errorf("%s\n err = %v\nwant = config %s: %s", y, err, p, want)
		}
	}
}
