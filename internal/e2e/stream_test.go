package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

const wait = 30 * time.Second

func clients(t *testing.T, c *testenv.Cluster) (*kubernetes.Clientset, *dynamic.DynamicClient) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs, dyn
}

func account(name string, c *testenv.Cluster) agent.Account {
	return agent.Account{Name: name, KubeconfigFile: c.KubeconfigPath, MaxResumableAge: 5 * time.Minute}
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// present waits until the query returns exactly the wanted namespace/name
// list (sorted).
func present(t *testing.T, cp *controlPlane, query url.Values, want ...string) []cachedObject {
	t.Helper()
	slices.Sort(want)
	var got []cachedObject
	eventually(t, wait, func() string {
		got = cp.list(t, query)
		n := names(got)
		slices.Sort(n)
		if slices.Equal(n, want) {
			return ""
		}
		return "query " + query.Encode() + ": got " + strings.Join(n, ",") + ", want " + strings.Join(want, ",")
	})
	return got
}

func TestObjectsFlowIntoTheCache(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, dyn := clients(t, cluster)
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	startAgent(t, cp.grpc, account("main", cluster))
	ctx := context.Background()

	mustCreateNamespace(t, cs, "apps")
	labels := map[string]string{"app": "web", "tier": "front"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", Labels: labels,
			Annotations: map[string]string{"moniker.spinnaker.io/application": "shop"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}},
		},
	}
	if _, err := cs.AppsV1().Deployments("apps").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "apps",
		Labels: map[string]string{"app.kubernetes.io/name": "billing"}}, Data: map[string]string{"color": "blue"}}
	if _, err := cs.CoreV1().ConfigMaps("apps").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	deps := present(t, cp, q("account", "main", "kind", "deployment", "namespace", "apps"), "apps/web")
	if deps[0].Application != "shop" || deps[0].APIVersion != "apps/v1" || deps[0].Kind != "Deployment" {
		t.Errorf("cached deployment: %+v", deps[0])
	}
	// Without a group, a kind and name that only one group has is found.
	if code, body, _ := getJSON(cp.http, "/cache/objects/main/deployment/web", q("namespace", "apps"), nil); code != http.StatusOK {
		t.Errorf("GET deployment without group: %d %s", code, body)
	}
	if code, _, _ := getJSON(cp.http, "/cache/objects/main/Deployment/web", q("namespace", "apps", "group", "batch"), nil); code != http.StatusNotFound {
		t.Errorf("GET deployment in group batch: %d, want 404", code)
	}
	present(t, cp, q("account", "main", "application", "billing"), "apps/settings")
	present(t, cp, q("account", "main", "namespace", "apps", "labelSelector", "tier=front"), "apps/web")

	// Update: the new content replaces the old, and a reader that passes
	// the resourceVersion the API server returned reads its own write.
	cm.Data["color"] = "green"
	updated, err := cs.CoreV1().ConfigMaps("apps").Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var o cachedObject
	code, body, err := getJSON(cp.http, "/cache/objects/main/ConfigMap/settings",
		q("namespace", "apps", "minResourceVersion", updated.ResourceVersion, "waitMs", "30000"), &o)
	if err != nil || code != http.StatusOK || !strings.Contains(string(o.Manifest), `"green"`) || o.ResourceVersion != updated.ResourceVersion {
		t.Fatalf("read-your-writes GET: %d %s %v", code, body, err)
	}
	if code, body, _ := getJSON(cp.http, "/cache/objects/main/ConfigMap/settings",
		q("namespace", "apps", "minResourceVersion", "999999999", "waitMs", "50"), nil); code != http.StatusGatewayTimeout {
		t.Errorf("GET with an unreachable minResourceVersion: %d %s, want 504", code, body)
	}
	if code, _, _ := getJSON(cp.http, "/cache/objects/main/ConfigMap/missing", q("namespace", "apps", "waitMs", "50"), nil); code != http.StatusNotFound {
		t.Errorf("GET of a missing object with waitMs: %d, want 404", code)
	}
	if code, _, _ := getJSON(cp.http, "/cache/objects/main/ConfigMap/settings", q("waitMs", "soon"), nil); code != http.StatusBadRequest {
		t.Errorf("GET with waitMs=soon: %d, want 400", code)
	}

	// Delete: gone from the cache.
	if err := cs.AppsV1().Deployments("apps").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	present(t, cp, q("account", "main", "kind", "Deployment", "namespace", "apps"))

	// A CRD created at runtime starts a watch; its objects flow; deleting
	// the CRD stops the watch and drops its objects.
	createWidgetCRD(t, cluster)
	widgets := dyn.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}).Namespace("apps")
	eventually(t, wait, func() string {
		w := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w1"}, "spec": map[string]any{"size": int64(3)},
		}}
		if _, err := widgets.Create(ctx, w, metav1.CreateOptions{}); err != nil {
			return "create widget: " + err.Error()
		}
		return ""
	})
	present(t, cp, q("account", "main", "kind", "Widget"), "apps/w1")
	ext := apiextClient(t, cluster)
	if err := ext.Delete(ctx, "widgets.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	present(t, cp, q("account", "main", "kind", "Widget"))

	// Account and agent endpoints.
	var acct map[string]any
	code, body, err = getJSON(cp.http, "/agents/kubernetes/accounts/main", nil, &acct)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET account: %d %s %v", code, body, err)
	}
	if acct["kubeHost"] != cluster.Host || acct["kubeVersion"] != testenv.KubernetesVersion || acct["certFingerprint"] == "" {
		t.Errorf("account facts: %s", body)
	}
	var nss []string
	if code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/main/namespaces", nil, &nss); err != nil || code != 200 || !slices.Contains(nss, "apps") {
		t.Errorf("namespaces: %d %s %v", code, body, err)
	}
	var agents []map[string]any
	if code, body, err := getJSON(cp.http, "/armory/agents", nil, &agents); err != nil || code != 200 || len(agents) != 1 || !strings.Contains(string(body), `"main"`) {
		t.Errorf("agents: %d %s %v", code, body, err)
	}
	if code, _, _ := getJSON(cp.http, "/agents/kubernetes/accounts/nope", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown account: %d, want 404", code)
	}
}

func TestReadAPIRejectsBadParameters(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	for query, mention := range map[string]string{
		"limit=ten":            "limit",
		"limit=-1":             "limit",
		"colour=blue":          `"colour"`,
		"labelSelector=a+in+(": "labelSelector",
		"kind=a&kind=b":        `"kind"`,
		"name=%C3%A9":          "name",
		"namespace=a%00b":      "namespace",
		"application=%ff":      "application",
	} {
		resp, err := http.Get(cp.http + "/cache/objects?" + query)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Message string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Message, mention) {
			t.Errorf("?%s: %d %q, want 400 naming %s", query, resp.StatusCode, e.Message, mention)
		}
	}
	if code, _, _ := getJSON(cp.http, "/cache/objects/main/ConfigMap/x", q("bogus", "1"), nil); code != http.StatusBadRequest {
		t.Errorf("get with unknown parameter: %d, want 400", code)
	}
	if code, _, _ := getJSON(cp.http, "/cache/objects/main/ConfigMap/x", q("waitMs", "9300000000000"), nil); code != http.StatusBadRequest {
		t.Errorf("get with a waitMs past any duration: %d, want 400", code)
	}
	if code, _, _ := getJSON(cp.http, "/cache/objects/main/ConfigMap/%C3%A9", nil, nil); code != http.StatusBadRequest {
		t.Errorf("get of a name no cached object can have: %d, want 400", code)
	}
	// Freeing assignments takes a non-empty array of names, nothing else.
	for _, body := range []string{``, `null`, `[]`, `[""]`, `["a"] ["b"]`, `{"a": 1}`} {
		resp, err := http.Post(cp.http+"/armory/agent/assignments", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /armory/agent/assignments %q: %d, want 400", body, resp.StatusCode)
		}
	}
}

func TestSecretDataNeverLeavesTheAgent(t *testing.T) {
	t.Parallel()
	const sentinel = "SENTINEL-d0-n0t-l3ak"
	b64 := base64.StdEncoding.EncodeToString([]byte(sentinel))
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	dbDir := t.TempDir()
	w := &wire{}
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(dbDir, "cache.db"), wire: w})
	// One Secret exists before the agent starts (it travels in a list
	// page), one is created after (it travels as a watch event).
	early := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: "default"},
		Data: map[string][]byte{"token": []byte(sentinel)}}
	if _, err := cs.CoreV1().Secrets("default").Create(context.Background(), early, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, cp.grpc, account("main", cluster))
	present(t, cp, q("account", "main", "kind", "Secret", "name", "early"), "default/early")

	lastApplied, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "creds", "namespace": "default"},
		"data": map[string]any{"token": b64}, "stringData": map[string]any{"password": sentinel},
	})
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default",
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(lastApplied)}},
		Data:       map[string][]byte{"token": []byte(sentinel)},
		StringData: map[string]string{"password": sentinel},
	}
	if _, err := cs.CoreV1().Secrets("default").Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := present(t, cp, q("account", "main", "kind", "Secret", "name", "creds"), "default/creds")
	if !strings.Contains(string(got[0].Manifest), `"token"`) {
		t.Errorf("scrubbed Secret lost its key names: %s", got[0].Manifest)
	}
	_, answer, _ := getJSON(cp.http, "/cache/objects", q("account", "main"), nil)
	_, one, _ := getJSON(cp.http, "/cache/objects/main/Secret/creds", q("namespace", "default"), nil)
	for where, data := range map[string][]byte{
		"the wire": w.bytes(), "the database files": dirBytes(t, dbDir), "the list API": answer, "the get API": one,
	} {
		for _, s := range []string{sentinel, b64} {
			if strings.Contains(string(data), s) {
				t.Errorf("secret value %q found in %s", s, where)
			}
		}
	}
	if len(w.bytes()) == 0 {
		t.Fatal("recorded nothing from the wire")
	}
}

func TestTwoAccountsOnTwoClustersWithFilters(t *testing.T) {
	t.Parallel()
	c1 := testenv.StartForTest(t, testenv.Options{Name: "filters-1"})
	c2 := testenv.StartForTest(t, testenv.Options{Name: "filters-2"})
	cs1, _ := clients(t, c1)
	cs2, _ := clients(t, c2)
	ctx := context.Background()
	for _, cs := range []*kubernetes.Clientset{cs1, cs2} {
		mustCreateNamespace(t, cs, "team1")
		mustCreateNamespace(t, cs, "team2")
		for _, ns := range []string{"team1", "team2"} {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + ns, Namespace: ns}}
			if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s-" + ns, Namespace: ns}}
			if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cache.db")})
	only := account("only-configmaps", c1)
	only.Kinds = []string{"configMap", "namespace"}
	scoped := account("team1-no-secrets", c2)
	scoped.Namespaces = []string{"team1"}
	scoped.OmitKinds = []string{"secret"}
	omitting := account("omit-team2", c2)
	omitting.OmitNamespaces = []string{"team2", "kube-system", "kube-public", "kube-node-lease"}
	omitting.Kinds = []string{"ConfigMap", "Secret", "Namespace"}
	startAgent(t, cp.grpc, only, scoped, omitting)

	// kinds: only ConfigMaps and Namespaces, all namespaces.
	present(t, cp, q("account", "only-configmaps", "kind", "ConfigMap", "namespace", "team1"), "team1/cm-team1")
	present(t, cp, q("account", "only-configmaps", "kind", "ConfigMap", "namespace", "team2"), "team2/cm-team2")
	present(t, cp, q("account", "only-configmaps", "kind", "Secret"))
	// namespaces + omitKinds: ConfigMaps of team1 only, no Secrets.
	present(t, cp, q("account", "team1-no-secrets", "kind", "ConfigMap"), "team1/cm-team1")
	present(t, cp, q("account", "team1-no-secrets", "kind", "Secret"))
	// omitNamespaces: team2 and system namespaces left out, Namespace objects too.
	present(t, cp, q("account", "omit-team2", "kind", "Secret"), "team1/s-team1")
	present(t, cp, q("account", "omit-team2", "kind", "Namespace"), "/default", "/team1")
	// The accounts' caches are separate even on one cluster.
	for _, o := range cp.list(t, q("account", "only-configmaps")) {
		if o.Account != "only-configmaps" || (o.Kind != "ConfigMap" && o.Kind != "Namespace") {
			t.Errorf("unexpected object in only-configmaps: %+v", o)
		}
	}
}

func mustCreateNamespace(t *testing.T, cs *kubernetes.Clientset, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func apiextClient(t *testing.T, c *testenv.Cluster) dynamic.ResourceInterface {
	_, dyn := clients(t, c)
	return dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
}

func createWidgetCRD(t *testing.T, c *testenv.Cluster) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	if _, err := apiextClient(t, c).Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Served a moment after its creation: an agent that looked at
	// discovery before would build its synthetic CRDs without it, and look
	// again only at its periodic rediscovery (minutes).
	dc, err := discovery.NewDiscoveryClientForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, func() string {
		groups, err := dc.ServerGroups()
		if err != nil {
			return "discovery: " + err.Error()
		}
		if !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "example.com" }) {
			return "example.com not discovered yet"
		}
		rs, err := dc.ServerResourcesForGroupVersion("example.com/v1")
		if err != nil || !slices.ContainsFunc(rs.APIResources, func(r metav1.APIResource) bool { return r.Name == "widgets" }) {
			return fmt.Sprintf("widgets not discovered yet (%v)", err)
		}
		return ""
	})
}
