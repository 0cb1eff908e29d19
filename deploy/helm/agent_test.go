package helm_test

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	agentconfig "github.com/kubesvc/kubesvc/internal/agent/config"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func loadAgent(t *testing.T, cm *corev1.ConfigMap, d *appsv1.Deployment, files func(string) []byte) *agentconfig.Config {
	t.Helper()
	path, text := writeRendered(t, cm, d, "armory-agent.yml", "/opt/armory/config/armory-agent.yml", files)
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == "config" && (m.MountPath != "/opt/armory/config" || m.SubPath != "") {
			t.Errorf("config mount %+v: the agent follows its file's updates only through a directory mount", m)
		}
	}
	cfg, err := agentconfig.Load(agentconfig.Source{Path: path})
	if err != nil {
		t.Fatalf("the rendered armory-agent.yml does not load: %v\n%s", err, text)
	}
	if len(cfg.Unsupported) > 0 {
		t.Errorf("the chart sets keys the agent ignores: %v", cfg.Unsupported)
	}
	return cfg
}

func TestAgentChart(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "chart-agent"})
	files := secretFiles(t, cluster.KubeconfigPath)

	t.Run("defaults: the cluster it runs in as one account", func(t *testing.T) {
		objs, err := render(t, "kubesvc-agent", "team-a", "team-a")
		if err != nil {
			t.Fatal(err)
		}
		d := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "team-a-kubesvc-agent"))
		cfg := loadAgent(t, typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "team-a-kubesvc-agent")), d, files)
		if len(cfg.Kubernetes.Accounts) != 1 || cfg.Kubernetes.Accounts[0].Name != "team-a" || !cfg.Kubernetes.Accounts[0].ServiceAccount {
			t.Errorf("accounts %+v, want one in-cluster account named after the release", cfg.Kubernetes.Accounts)
		}
		if !cfg.Clouddriver.Insecure || cfg.Clouddriver.Address != "kubesvc-controlplane.spinnaker.svc:9091" || cfg.Server.Port != 8082 {
			t.Errorf("clouddriver %+v, server %+v", cfg.Clouddriver, cfg.Server)
		}
		cs := apply(t, cluster, "team-a", objs)
		sa := d.Spec.Template.Spec.ServiceAccountName
		for _, check := range []struct{ verb, group, resource, ns string }{
			{"watch", "", "configmaps", ""}, {"list", "apiextensions.k8s.io", "customresourcedefinitions", ""},
			{"create", "apps", "deployments", "shop"}, {"patch", "apps", "deployments", "shop"}, {"delete", "", "services", "shop"},
		} {
			if !can(t, cs, sa, "team-a", check.verb, check.group, check.resource, check.ns) {
				t.Errorf("the agent may not %s %s/%s in %q: Spinnaker could not see or deploy it", check.verb, check.group, check.resource, check.ns)
			}
		}
	})

	t.Run("other clusters' kubeconfigs with mTLS to the control plane and no RBAC here", func(t *testing.T) {
		objs, err := render(t, "kubesvc-agent", "kubesvc-agent", "agents", "testdata/agent-multi.yaml")
		if err != nil {
			t.Fatal(err)
		}
		d := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "kubesvc-agent"))
		cfg := loadAgent(t, typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "kubesvc-agent")), d, files)
		if cfg.Clouddriver.Insecure || cfg.Clouddriver.TLS.ServerName != "kubesvc.example.com" || cfg.Clouddriver.TLS.ClientCertFile == "" || cfg.Clouddriver.TLS.CACertFile == "" {
			t.Errorf("clouddriver %+v: want TLS with a client certificate", cfg.Clouddriver)
		}
		if len(cfg.Kubernetes.Accounts) != 2 || cfg.Kubernetes.Accounts[0].Namespaces[1] != "payments" || cfg.Kubernetes.ServerSideApply.Enabled != "always" ||
			!cfg.Kubernetes.Proxy.Enabled || !cfg.Kubernetes.Proxy.ReadOnly {
			t.Errorf("kubernetes %+v", cfg.Kubernetes)
		}
		for _, o := range objs {
			if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
				t.Errorf("rbac.create false rendered a %s", o.GetKind())
			}
		}
		apply(t, cluster, "agents", objs)
	})

	t.Run("namespaced RBAC", func(t *testing.T) {
		dir := t.TempDir()
		f := filepath.Join(dir, "values.yaml")
		if err := os.WriteFile(f, []byte("rbac: {clusterWide: false}\ninClusterAccount: {name: team-b}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		objs, err := render(t, "kubesvc-agent", "agent", "team-b", f)
		if err != nil {
			t.Fatal(err)
		}
		d := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "agent-kubesvc-agent"))
		cfg := loadAgent(t, typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "agent-kubesvc-agent")), d, files)
		// A Role reaches its namespace only: the account watches just that.
		if a := cfg.Kubernetes.Accounts; len(a) != 1 || a[0].Name != "team-b" || len(a[0].Namespaces) != 1 || a[0].Namespaces[0] != "team-b" || !a[0].OnlyNamespacedResources {
			t.Errorf("accounts %+v, want team-b watching namespace team-b, namespaced kinds only", a)
		}
		cs := apply(t, cluster, "team-b", objs)
		sa := d.Spec.Template.Spec.ServiceAccountName
		if !can(t, cs, sa, "team-b", "create", "apps", "deployments", "team-b") {
			t.Error("the agent may not deploy in its own namespace")
		}
		if can(t, cs, sa, "team-b", "create", "apps", "deployments", "team-a") {
			t.Error("with rbac.clusterWide false the agent may deploy in another namespace")
		}
	})

	t.Run("RBAC reaches the namespaces the in-cluster account watches", func(t *testing.T) {
		type binding struct{ kind, namespace, subject string }
		dir := t.TempDir()
		for _, tc := range []struct {
			name, values string
			want         []binding // one per Role (ClusterRole) and its binding
		}{
			{"defaults: cluster-wide", "", []binding{{"ClusterRole", "", "team-c"}}},
			{"clusterWide false: the release namespace", "rbac: {clusterWide: false}\n", []binding{{"Role", "team-c", "team-c"}}},
			{
				"clusterWide false: each namespace watched",
				"rbac: {clusterWide: false}\ninClusterAccount: {namespaces: [team-c-web, team-c-db]}\n",
				[]binding{{"Role", "team-c-web", "team-c"}, {"Role", "team-c-db", "team-c"}},
			},
		} {
			f := filepath.Join(dir, "values.yaml")
			if err := os.WriteFile(f, []byte(tc.values), 0o600); err != nil {
				t.Fatal(err)
			}
			objs, err := render(t, "kubesvc-agent", "agent", "team-c", f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var roles, bindings []binding
			for _, o := range objs {
				switch o.GetKind() {
				case "Role", "ClusterRole":
					roles = append(roles, binding{o.GetKind(), o.GetNamespace(), ""})
				case "RoleBinding", "ClusterRoleBinding":
					b := typed[rbacv1.RoleBinding](t, o) // a ClusterRoleBinding has the same fields
					if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != "agent-kubesvc-agent" ||
						b.RoleRef.Name != "agent-kubesvc-agent" || b.RoleRef.Kind+"Binding" != o.GetKind() {
						t.Errorf("%s: %s %s/%s: subjects %+v, roleRef %+v", tc.name, o.GetKind(), o.GetNamespace(), o.GetName(), b.Subjects, b.RoleRef)
						continue
					}
					bindings = append(bindings, binding{b.RoleRef.Kind, o.GetNamespace(), b.Subjects[0].Namespace})
				}
			}
			var wantRoles []binding
			for _, w := range tc.want {
				wantRoles = append(wantRoles, binding{w.kind, w.namespace, ""})
			}
			if !slices.Equal(roles, wantRoles) || !slices.Equal(bindings, tc.want) {
				t.Errorf("%s: roles %v, bindings (roleRef kind, namespace, subject's namespace) %v; want %v", tc.name, roles, bindings, tc.want)
			}
			if !strings.Contains(tc.name, "each namespace") {
				continue
			}
			// Applied: the agent may deploy where it watches, nowhere else.
			byNamespace := map[string][]*unstructured.Unstructured{}
			for _, o := range objs {
				ns := cmp.Or(o.GetNamespace(), "team-c")
				byNamespace[ns] = append(byNamespace[ns], o)
			}
			var cs kubernetes.Interface
			for _, ns := range []string{"team-c", "team-c-web", "team-c-db"} {
				cs = apply(t, cluster, ns, byNamespace[ns])
			}
			for ns, want := range map[string]bool{"team-c-web": true, "team-c-db": true, "team-c": false, "team-a": false} {
				if got := can(t, cs, "agent-kubesvc-agent", "team-c", "create", "apps", "deployments", ns); got != want {
					t.Errorf("the agent may create deployments in %s: %v, want %v", ns, got, want)
				}
			}
		}
	})

	t.Run("account edits do not restart the pod, other edits do", func(t *testing.T) {
		dir := t.TempDir()
		checksum := func(values string) string {
			t.Helper()
			f := filepath.Join(dir, "values.yaml")
			if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
				t.Fatal(err)
			}
			objs, err := render(t, "kubesvc-agent", "a", "a", f)
			if err != nil {
				t.Fatal(err)
			}
			return typed[appsv1.Deployment](t, find(t, objs, "Deployment", "a-kubesvc-agent")).Spec.Template.Annotations["checksum/config"]
		}
		base := checksum("accounts: [{name: one, kubeconfigFile: /k/one}]\n")
		if base == "" {
			t.Fatal("no checksum/config annotation")
		}
		if c := checksum("accounts: [{name: one, kubeconfigFile: /k/one}, {name: two, kubeconfigFile: /k/two}]\n"); c != base {
			t.Error("adding an account changes the pod template: the pod would restart for an edit the agent applies live")
		}
		if c := checksum("accounts: [{name: one, kubeconfigFile: /k/one}]\ncontrolplane: {address: elsewhere:9091}\n"); c == base {
			t.Error("a new control-plane address leaves the pod template unchanged: the agent would never use it")
		}
	})

	t.Run("keys the chart manages cannot be set under config", func(t *testing.T) {
		dir := t.TempDir()
		for values, want := range map[string]string{
			"config: {clouddriver: {insecure: false}}\n":                                      "config.clouddriver.insecure is set by the chart: use controlplane.address and controlplane.tls",
			"config: {kubernetes: {accounts: [{name: x}]}}\n":                                 "config.kubernetes.accounts is set by the chart",
			"config: {server: {port: 9000}}\n":                                                "config.server.port is set by the chart",
			"rbac: {clusterWide: false}\ninClusterAccount: {omitNamespaces: [kube-system]}\n": "set inClusterAccount.namespaces, not omitNamespaces",
		} {
			f := filepath.Join(dir, "values.yaml")
			if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := render(t, "kubesvc-agent", "a", "a", f); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", values, err, want)
			}
		}
	})
}
