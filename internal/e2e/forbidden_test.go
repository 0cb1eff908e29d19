package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubesvc/kubesvc/internal/accountview"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// limitedKubeconfig writes a kubeconfig for a service account allowed to
// list and watch ConfigMaps in namespace ns only.
func limitedKubeconfig(t *testing.T, c *testenv.Cluster, ns string) string {
	t.Helper()
	ctx := context.Background()
	cs, _ := clients(t, c)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "configmaps"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "configmaps"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "configmaps"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc := c.RESTConfig()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos["reader"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "reader"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "reader.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Credentials that may read one namespace, on an account without a
// namespaces filter: none of its streams can be served, so the account is
// in ERROR, and its status says which streams cannot be served and what to
// change; an account naming a kind the cluster does not serve watches the
// others and says so.
func TestForbiddenStreamsAreReported(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "forbidden"})
	kubeconfig := limitedKubeconfig(t, cluster, "limited")
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db")})
	lim := account("lim", cluster)
	lim.KubeconfigFile, lim.Kinds = kubeconfig, []string{"ConfigMap"}
	// A kind the API server does not serve (a typo) is named too.
	typo := account("typo", cluster)
	typo.Kinds = []string{"ConfigMap", "ConfigMapp"}
	// One that cannot start at all is in ERROR.
	broken := account("broken", cluster)
	broken.KubeconfigFile = filepath.Join(t.TempDir(), "missing.kubeconfig")
	startAgent(t, cp.grpc, lim, typo, broken)
	for name, c := range map[string]struct {
		state string
		wants []string
	}{
		"lim":  {"ERROR", []string{"1 of 1 streams cannot be served", "at the cluster scope", "list them in its namespaces"}},
		"typo": {"WATCHING", []string{"kinds not served by the API server", ": ConfigMapp"}},
	} {
		eventually(t, wait, func() string {
			var a accountview.Account
			code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/"+name, nil, &a)
			if err != nil || code != 200 {
				return fmt.Sprintf("GET account %s: %d %s %v", name, code, body, err)
			}
			for _, want := range c.wants {
				if a.AgentStates["agent-"+strings.ToLower(t.Name())] != c.state || !strings.Contains(a.ErrorMessage, want) {
					return fmt.Sprintf("account %s: states %v, errorMessage %q; want %s and %q", name, a.AgentStates, a.ErrorMessage, c.state, want)
				}
			}
			return ""
		})
	}
	// The states are counted for alerts.
	eventually(t, wait, func() string {
		_, body := rawGet(t, cp.http+"/metrics")
		for _, want := range []string{`kubesvc_controlplane_accounts{state="WATCHING"} 1`, `kubesvc_controlplane_accounts{state="ERROR"} 2`} {
			if !strings.Contains(body, want) {
				return "metrics: no " + want + " in\n" + grepLines(body, "kubesvc_controlplane_accounts")
			}
		}
		return ""
	})
}
