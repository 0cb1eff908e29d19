package helm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// loadControlPlane loads the control plane configuration a rendering
// carries, as the pod would see it, and builds its TLS configurations.
func loadControlPlane(t *testing.T, cm *corev1.ConfigMap, d *appsv1.Deployment, files func(string) []byte) *cpconfig.Config {
	t.Helper()
	path, cfgText := writeRendered(t, cm, d, "controlplane.yml", "/etc/kubesvc/config/controlplane.yml", files)
	cfg, err := cpconfig.Load(path)
	if err != nil {
		t.Fatalf("the rendered controlplane.yml does not load: %v\n%s", err, cfgText)
	}
	if _, _, err := cfg.ServerTLS(nil); err != nil {
		t.Errorf("gRPC TLS: %v", err)
	}
	if _, err := cfg.RESTTLS(nil); err != nil {
		t.Errorf("REST TLS: %v", err)
	}
	if _, err := cfg.PeerTLS(nil); err != nil {
		t.Errorf("peer TLS: %v", err)
	}
	if len(cfg.Unsupported) > 0 {
		t.Errorf("the chart sets keys this build ignores: %v", cfg.Unsupported)
	}
	return cfg
}

func TestControlPlaneChart(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "chart-cp"})
	files := secretFiles(t, cluster.KubeconfigPath)

	t.Run("defaults: one replica on SQLite", func(t *testing.T) {
		objs, err := render(t, "kubesvc-controlplane", "kubesvc-controlplane", "spinnaker")
		if err != nil {
			t.Fatal(err)
		}
		d := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "kubesvc-controlplane"))
		cfg := loadControlPlane(t, typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "kubesvc-controlplane")), d, files)
		if cfg.SQL.Driver != cpconfig.DriverSQLite || cfg.SQL.Path != "/var/lib/kubesvc/kubesvc.db" && !strings.HasSuffix(cfg.SQL.Path, "/var/lib/kubesvc/kubesvc.db") {
			t.Errorf("sql = %+v, want SQLite in the data volume", cfg.SQL)
		}
		if cfg.Cluster.Mode != cpconfig.ClusterLocal || cfg.GRPC.Security.Enabled || cfg.Server.SSL.Enabled {
			t.Errorf("cluster %s, gRPC TLS %v, REST TLS %v: want a local plaintext replica", cfg.Cluster.Mode, cfg.GRPC.Security.Enabled, cfg.Server.SSL.Enabled)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("strategy %s: two pods would open one SQLite file during a rollout", d.Spec.Strategy.Type)
		}
		apply(t, cluster, "cp-defaults", objs)
	})

	t.Run("three replicas on MySQL with mTLS everywhere", func(t *testing.T) {
		objs, err := render(t, "kubesvc-controlplane", "kubesvc-controlplane", "cp-ha", "testdata/controlplane-ha.yaml")
		if err != nil {
			t.Fatal(err)
		}
		d := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "kubesvc-controlplane"))
		cfg := loadControlPlane(t, typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "kubesvc-controlplane")), d, files)
		if cfg.SQL.Driver != cpconfig.DriverMySQL || cfg.SQL.DSN != "kubesvc:pw@tcp(mysql:3306)/kubesvc" {
			t.Errorf("sql = %s %q, want MySQL with the DSN from the mounted Secret", cfg.SQL.Driver, cfg.SQL.DSN)
		}
		k := cfg.Cluster.Kubernetes
		if cfg.Cluster.Mode != cpconfig.ClusterKubernetes || k.Namespace != "cp-ha" || k.ClouddriverServiceNamePrefix != "kubesvc-controlplane" || k.HTTPPortName != "http" || cfg.Cluster.PeerSecret == "" {
			t.Errorf("cluster = %+v", cfg.Cluster)
		}
		if !cfg.GRPC.Security.Enabled || cfg.GRPC.Security.ClientAuth != cpconfig.ClientAuthRequire || !cfg.GRPC.X509.Enabled {
			t.Errorf("gRPC security = %+v, x509 %v", cfg.GRPC.Security, cfg.GRPC.X509.Enabled)
		}
		if !cfg.Server.SSL.Enabled || cfg.Server.SSL.ClientAuth != cpconfig.SSLClientAuthNeed || cfg.Cluster.PeerServerName != "kubesvc-controlplane.cp-ha.svc" {
			t.Errorf("REST TLS = %+v, peer server name %q", cfg.Server.SSL, cfg.Cluster.PeerServerName)
		}
		// Peer discovery finds the replicas through the Service named as
		// the prefix, on its port named http; the agents' Service has none.
		svc := typed[corev1.Service](t, find(t, objs, "Service", "kubesvc-controlplane"))
		if svc.Spec.Ports[0].Name != "http" {
			t.Errorf("service ports %+v, want http first", svc.Spec.Ports)
		}
		for _, p := range typed[corev1.Service](t, find(t, objs, "Service", "kubesvc-controlplane-agents")).Spec.Ports {
			if p.Name == "http" {
				t.Error("the agents' Service has an http port: peer discovery would take it for replicas")
			}
		}
		if p := d.Spec.Template.Spec.Containers[0].ReadinessProbe; p.TCPSocket == nil {
			t.Errorf("readiness probe %+v: with client-auth need an HTTP probe cannot connect", p)
		}
		find(t, objs, "PodDisruptionBudget", "kubesvc-controlplane")
		cs := apply(t, cluster, "cp-ha", objs)
		sa := d.Spec.Template.Spec.ServiceAccountName
		for _, verb := range []string{"list", "watch"} {
			if !can(t, cs, sa, "cp-ha", verb, "discovery.k8s.io", "endpointslices", "cp-ha") {
				t.Errorf("the control plane's service account may not %s EndpointSlices: peer discovery would fail", verb)
			}
		}
		if !can(t, cs, sa, "cp-ha", "get", "", "secrets", "cp-ha", "kubesvc-kubeconfigs") {
			t.Error("rbac.secrets.names: the control plane may not read the Secret its dynamic accounts name")
		}
		for _, verb := range []string{"list", "get"} {
			if can(t, cs, sa, "cp-ha", verb, "", "secrets", "cp-ha", "someone-elses") {
				t.Errorf("the control plane's service account may %s a Secret rbac.secrets.names does not name", verb)
			}
		}
		if f, err := cfg.ProxyFilter(); !cfg.Proxy || f == nil || err != nil {
			t.Errorf("config.kubesvc.proxy: enabled %v, filter %v %v", cfg.Proxy, f, err)
		}
		if cfg.DynamicAccounts.EncryptionKey == "" && cfg.DynamicAccounts.EncryptionKeyFile == "" {
			t.Error("dynamicAccounts.encryptionKeySecret: no sealing key configured")
		}
	})

	t.Run("REST TLS from a Secret without a CA", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte("restTLS: {secretName: public-cert, caKey: ''}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		objs, err := render(t, "kubesvc-controlplane", "kubesvc-controlplane", "cp-public", f)
		if err != nil {
			t.Fatal(err)
		}
		cm := typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "kubesvc-controlplane"))
		if strings.Contains(cm.Data["controlplane.yml"], "ca.crt") {
			t.Errorf("the configuration names a ca.crt the Secret does not have:\n%s", cm.Data["controlplane.yml"])
		}
		cfg := loadControlPlane(t, cm, typed[appsv1.Deployment](t, find(t, objs, "Deployment", "kubesvc-controlplane")), files)
		if !cfg.Server.SSL.Enabled || cfg.Cluster.PeerCAFile != "" {
			t.Errorf("REST TLS %v, peer CA %q: want TLS, peers verified against the system's roots", cfg.Server.SSL.Enabled, cfg.Cluster.PeerCAFile)
		}
	})

	t.Run("keys the chart manages cannot be set under config", func(t *testing.T) {
		dir := t.TempDir()
		const ha = "replicaCount: 3\nsql: {dsnSecret: db}\n"
		for values, want := range map[string]string{
			// As in the agent chart, the key is refused whatever its value.
			"config: {server: {port: 7002}}\n":                                                                           "config.server.port is set by the chart: use service.httpPort",
			"config: {kubesvc: {grpc: {server: {port: 9443}}}}\n":                                                        "config.kubesvc.grpc.server.port is set by the chart: use service.grpcPort",
			"config: {sql: {path: /data/cache.db}}\n":                                                                    "config.sql.path is set by the chart: the SQLite file lives in the chart's data volume: use persistence",
			"config: {sql: {driver: mysql, dsnFile: /dsn}}\n" + ha:                                                       "config.sql.dsnFile is set by the chart: use sql.dsnSecret",
			"config: {sql: {driver: mysql}, kubesvc: {cluster: local}}\n" + ha:                                           "config.kubesvc.cluster is set by the chart: replicaCount > 1",
			"config: {sql: {driver: mysql}, kubesvc: {cluster-kubernetes: {httpPortName: web}}}\n" + ha:                  "config.kubesvc.cluster-kubernetes.httpPortName is set by the chart",
			"config: {sql: {driver: mysql}, kubesvc: {peerSecretFile: /mine}}\n" + ha:                                    "config.kubesvc.peerSecretFile is set by the chart: use peerSecret.existingSecret",
			"config: {kubesvc: {grpc: {server: {security: {privateKey: 'file:/k'}}}}}\ngrpcTLS: {secretName: g}\n":       "config.kubesvc.grpc.server.security.privateKey is set by the chart: use grpcTLS.secretName",
			"config: {server: {ssl: {client-auth: want}}}\nrestTLS: {secretName: r}\n":                                   "config.server.ssl.client-auth is set by the chart: use restTLS.secretName",
			"config: {kubesvc: {peerTls: {serverName: cp.example}}}\nrestTLS: {secretName: r}\n":                         "config.kubesvc.peerTls.serverName is set by the chart: use restTLS.peerServerName",
			"config: {kubesvc: {dynamicAccounts: {encryptionKeyFile: /k}}}\ndynamicAccounts: {encryptionKeySecret: k}\n": "config.kubesvc.dynamicAccounts.encryptionKeyFile is set by the chart: use dynamicAccounts.encryptionKeySecret",
		} {
			f := filepath.Join(dir, "values.yaml")
			if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := render(t, "kubesvc-controlplane", "cp", "ns", f); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", values, err, want)
			}
		}

		// The defaults, the keys beside managed ones, and managed keys the
		// chart leaves unset in this rendering all pass.
		for values, want := range map[string]string{
			"": "port: 7002",
			"config: {kubesvc: {dynamicAccounts: {enabled: true}}}\ndynamicAccounts: {encryptionKeySecret: k}\n": "encryptionKeyFile: /etc/kubesvc/dynamic/key",
			"config: {server: {ssl: {enabled: true, certificate: 'file:/mine/tls.crt'}}}\n":                      "certificate: file:/mine/tls.crt",
		} {
			f := filepath.Join(dir, "values.yaml")
			if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
				t.Fatal(err)
			}
			objs, err := render(t, "kubesvc-controlplane", "cp", "ns", f)
			if err != nil {
				t.Errorf("%q: %v", values, err)
				continue
			}
			if cm := typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "cp-kubesvc-controlplane")); !strings.Contains(cm.Data["controlplane.yml"], want) {
				t.Errorf("%q: controlplane.yml lacks %q:\n%s", values, want, cm.Data["controlplane.yml"])
			}
		}
	})

	t.Run("bad values are refused with a message naming the value", func(t *testing.T) {
		dir := t.TempDir()
		for values, want := range map[string]string{
			"replicaCount: 2\n":                                 "replicaCount > 1 needs config.sql.driver mysql or postgres",
			"config: {sql: {driver: mysql}}\n":                  "config.sql.driver mysql needs sql.dsnSecret",
			"config: {sql: {driver: oracle}}\n":                 `config.sql.driver must be sqlite, mysql or postgres, got "oracle"`,
			"grpcTLS: {secretName: s, clientAuth: maybe}\n":     `grpcTLS.clientAuth must be NONE, OPTIONAL or REQUIRE, got "maybe"`,
			"restTLS: {secretName: s, clientAuth: sometimes}\n": `restTLS.clientAuth must be none, want or need, got "sometimes"`,
		} {
			f := filepath.Join(dir, "values.yaml")
			if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := render(t, "kubesvc-controlplane", "cp", "ns", f); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", values, err, want)
			}
		}
	})
}
