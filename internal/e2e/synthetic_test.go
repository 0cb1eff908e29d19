package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/accountview"
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
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db"), opWait: 10 * time.Second})
	acct := account("restricted", cluster)
	acct.OnlyNamespacedResources = true
	// kinds narrows what is watched, not what describes the account.
	acct.Kinds = []string{"ConfigMap", "Widget"}
	acct.Namespaces = []string{"apps", "quiet"}
	acct.CRDs = []agent.CRD{{Kind: "widget", Group: "Example.com"}, {Kind: "Gadget", Group: "example.com"}}
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

	// A Namespace deployed through the account succeeds: the synthetic
	// stream holds no resource version for the task to wait for.
	code, id, body := postOps(t, cp, "?clientRequestId=ns-1", `[{"deployManifest": {"account": "restricted", "moniker": {"app": "x"},
	  "manifests": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}]}}]`)
	if code != http.StatusOK {
		t.Fatalf("POST /kubernetes/ops: %d %s", code, body)
	}
	if tk := waitTask(t, cp, id); tk.State != "SUCCEEDED" {
		t.Errorf("deploy of a Namespace through an onlyNamespacedResources account: %+v", tk)
	}

	// A permissions edit while the synthetic streams run is applied live.
	acct.Permissions = map[string][]string{"READ": {"auditors"}}
	if err := ra.SetAccounts([]agent.Account{acct}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, func() string {
		var a struct{ Permissions map[string][]string }
		if code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/restricted", nil, &a); err != nil || code != 200 || fmt.Sprint(a.Permissions) != "map[READ:[auditors]]" {
			return fmt.Sprintf("account: %d %s %v", code, body, err)
		}
		return ""
	})

	acct.Namespaces = []string{"apps"}
	if err := ra.SetAccounts([]agent.Account{acct}); err != nil {
		t.Fatal(err)
	}
	present(t, cp, q("account", "restricted", "kind", "Namespace"), "/apps")
}

// The same for a dynamic account: customResourceDefinitions travel with
// the account to the agent.
func TestSyntheticObjectsOfADynamicAccount(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "synthetic-dyn"})
	cs, _ := clients(t, cluster)
	mustCreateNamespace(t, cs, "team")
	createWidgetCRD(t, cluster)
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), dynamic: fastDynamic()})
	startAgentAs(t, "agent-a", "zone-a", cp.grpc)

	def := fmt.Sprintf(`[{"name": "dyn-restricted", "kubeconfigFile": %q, "onlyNamespacedResources": true,
	  "namespaces": ["team"], "customResourceDefinitions": [{"kind": "Widget.example.com"}]}]`, cluster.KubeconfigPath)
	if code, body := send(t, "POST", cp.http+"/armory/accounts", def); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body := send(t, "PATCH", cp.http+"/armory/accounts", `[{"name": "dyn-restricted", "state": "ACTIVE"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	present(t, cp, q("account", "dyn-restricted", "kind", "Namespace"), "/team")
	present(t, cp, q("account", "dyn-restricted", "kind", "CustomResourceDefinition"), "/widgets.example.com")

	bad := fmt.Sprintf(`[{"name": "dyn-bad", "kubeconfigFile": %q, "customResourceDefinitions": [{"kind": "Widget"}]}]`, cluster.KubeconfigPath)
	if code, body := send(t, "POST", cp.http+"/armory/accounts", bad); code != http.StatusBadRequest || !strings.Contains(body, "customResourceDefinitions[0].kind: must be Kind.group") {
		t.Errorf("a kind without its group: %d %s, want a 400 naming the field", code, body)
	}
}

// A declared custom kind whose CRD is created after the account is
// served reaches the cache as its synthetic CRD once the CRD watch sees
// it, not at the periodic rediscovery minutes later.
func TestSyntheticCRDOfAKindCreatedLater(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "synthetic-later"})
	cs, _ := clients(t, cluster)
	mustCreateNamespace(t, cs, "apps")
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	acct := account("later", cluster)
	acct.OnlyNamespacedResources = true
	acct.Namespaces = []string{"apps"}
	acct.CRDs = []agent.CRD{{Kind: "Widget", Group: "example.com"}}
	startAgent(t, cp.grpc, acct)
	// Served, every stream built: the synthetic CRDs without Widget.
	eventually(t, wait, func() string {
		var a accountview.Account
		code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/later", nil, &a)
		if err != nil || code != 200 || a.AgentStates["agent-"+strings.ToLower(t.Name())] != "WATCHING" {
			return fmt.Sprintf("account: %d %s %v", code, body, err)
		}
		return ""
	})
	present(t, cp, q("account", "later", "kind", "Namespace"), "/apps")
	present(t, cp, q("account", "later", "kind", "CustomResourceDefinition"))

	createWidgetCRD(t, cluster)
	present(t, cp, q("account", "later", "kind", "CustomResourceDefinition"), "/widgets.example.com")
}
