package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// An account with onlyNamespacedResources watches no cluster-scoped kind,
// yet its namespaces (even one without objects) and its declared custom
// kinds reach the cache as synthetic Namespace and
// CustomResourceDefinition objects, built from the configuration and
// discovery; a declared kind the cluster does not serve is left out; an
// edit of the namespaces replaces them.
func TestSyntheticNamespacesAndCRDs(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "synthetic"})
	cs, _ := clients(t, cluster)
	mustCreateNamespace(t, cs, "apps")
	mustCreateNamespace(t, cs, "quiet")
	createWidgetCRD(t, cluster)
	createConfigMap(t, cs, "apps", "settings")
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	acct := account("restricted", cluster)
	acct.OnlyNamespacedResources = true
	acct.Namespaces = []string{"apps", "quiet"}
	acct.CRDs = []agent.CRD{{Kind: "Widget", Group: "example.com"}, {Kind: "Gadget", Group: "example.com"}}
	ra := startAgent(t, cp.grpc, acct)

	present(t, cp, q("account", "restricted", "kind", "Namespace"), "/apps", "/quiet")
	crds := present(t, cp, q("account", "restricted", "kind", "CustomResourceDefinition"), "/widgets.example.com")
	var crd struct {
		Metadata struct{ Annotations map[string]string }
		Spec     struct {
			Group, Scope string
			Names        struct{ Kind, Plural string }
			Versions     []struct{ Name string }
		}
	}
	if err := json.Unmarshal(crds[0].Manifest, &crd); err != nil {
		t.Fatal(err)
	}
	if crd.Spec.Group != "example.com" || crd.Spec.Scope != "Namespaced" || crd.Spec.Names.Kind != "Widget" || crd.Spec.Names.Plural != "widgets" ||
		len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1" || crd.Metadata.Annotations["kubesvc.io/synthetic"] != "true" {
		t.Errorf("synthetic CRD: %s", crds[0].Manifest)
	}
	// Real objects still flow; cluster-scoped kinds are not watched.
	present(t, cp, q("account", "restricted", "kind", "ConfigMap", "name", "settings"), "apps/settings")
	present(t, cp, q("account", "restricted", "kind", "ClusterRole"))
	var nss []string
	if code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/restricted/namespaces", nil, &nss); err != nil || code != 200 || !slices.Contains(nss, "quiet") {
		t.Errorf("namespaces: %d %s %v; want quiet, which has no objects", code, body, err)
	}

	acct.Namespaces = []string{"apps"}
	if err := ra.SetAccounts([]agent.Account{acct}); err != nil {
		t.Fatal(err)
	}
	present(t, cp, q("account", "restricted", "kind", "Namespace"), "/apps")
}
