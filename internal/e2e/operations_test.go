package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

type task struct {
	ID     string
	State  string
	Status struct {
		Completed, Failed bool
		Status            string
	}
	ResultObjects []struct {
		ManifestNamesByNamespace map[string][]string
		DeployedNamesByLocation  map[string][]string
		Type, Message            string
	}
	History []struct{ Phase, Status string }
}

func postOps(t *testing.T, cp *controlPlane, query, body string) (int, string, string) {
	t.Helper()
	code, resp := send(t, "POST", cp.http+"/kubernetes/ops"+query, body)
	var r struct{ ID, ResourceURI string }
	_ = json.Unmarshal([]byte(resp), &r)
	return code, r.ID, resp
}

func waitTask(t *testing.T, cp *controlPlane, id string) task {
	t.Helper()
	var tk task
	eventually(t, wait, func() string {
		code, body, err := getJSON(cp.http, "/task/"+id, nil, &tk)
		if err != nil || code != http.StatusOK {
			return fmt.Sprintf("GET /task/%s: %d %s %v", id, code, body, err)
		}
		if !tk.Status.Completed {
			return "task " + id + " still running"
		}
		return ""
	})
	return tk
}

const webDeploy = `[{"deployManifest": {"account": "main", "moniker": {"app": "shop"}, "manifests": [
 {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
   "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}},
 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"}, "data": {"a": "b"}}
]}}]`

// Operations go through the control plane to the agent holding the
// account, change the cluster, and are reflected in the cache before the
// task is reported succeeded; a repeated clientRequestId runs once.
func TestOperationsDeployAndScaleThroughTheControlPlane(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{ControllerManager: true})
	cs, _ := clients(t, cluster)
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), opWait: 30 * time.Second})
	startAgent(t, cp.grpc, account("main", cluster))
	cp.watching(t, "main")

	code, id, body := postOps(t, cp, "?clientRequestId=deploy-1", webDeploy)
	if code != http.StatusOK || id != "deploy-1" {
		t.Fatalf("POST /kubernetes/ops: %d %s", code, body)
	}
	tk := waitTask(t, cp, id)
	if tk.Status.Failed || tk.State != "SUCCEEDED" || len(tk.ResultObjects) != 1 {
		t.Fatalf("deploy task: %+v", tk)
	}
	names := strings.Join(tk.ResultObjects[0].ManifestNamesByNamespace["default"], ",")
	if !strings.Contains(names, "deployment web") || !strings.Contains(names, "configMap settings-v000") {
		t.Errorf("manifestNamesByNamespace: %s", names)
	}
	// Read-your-writes: the cache has both objects the moment the task says so.
	for _, path := range []string{"/cache/objects/main/Deployment/web", "/cache/objects/main/ConfigMap/settings-v000"} {
		if code, body, _ := getJSON(cp.http, path, q("namespace", "default"), nil); code != http.StatusOK {
			t.Errorf("GET %s right after success: %d %s", path, code, body)
		}
	}
	// The same clientRequestId again: same task, nothing deployed twice.
	if code, again, _ := postOps(t, cp, "?clientRequestId=deploy-1", webDeploy); code != http.StatusOK || again != "deploy-1" {
		t.Errorf("repeated clientRequestId: %d %s", code, again)
	}
	// (A second run would reuse settings-v000, the same content: count the
	// operations the agents were sent instead.)
	var hist []struct{ Type string }
	if code, body, err := getJSON(cp.http, "/armory/agent/operations", nil, &hist); err != nil || code != http.StatusOK {
		t.Fatalf("GET /armory/agent/operations: %d %s %v", code, body, err)
	}
	deploys := 0
	for _, h := range hist {
		if h.Type == "deployManifest" {
			deploys++
		}
	}
	if deploys != 1 {
		t.Errorf("the repeated request: %d deployManifest operations in the history, want 1", deploys)
	}

	code, id, body = postOps(t, cp, "", `[{"scaleManifest": {"account": "main", "manifestName": "deployment web", "location": "default", "replicas": 3}}]`)
	if code != http.StatusOK {
		t.Fatalf("scale: %d %s", code, body)
	}
	if tk := waitTask(t, cp, id); tk.State != "SUCCEEDED" {
		t.Fatalf("scale task: %+v", tk)
	}
	d, err := cs.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas after scale: %v %v", d.Spec.Replicas, err)
	}

	code, id, body = postOps(t, cp, "", `[{"patchManifest": {"account": "main", "manifestName": "deployment web", "location": "default",
		"patchBody": {"metadata": {"labels": {"patched": "yes"}}}, "options": {"mergeStrategy": "merge"}}}]`)
	if code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, body)
	}
	if tk := waitTask(t, cp, id); tk.State != "SUCCEEDED" {
		t.Fatalf("patch task: %+v", tk)
	}
	if d, err := cs.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{}); err != nil || d.Labels["patched"] != "yes" {
		t.Errorf("labels after patch: %v %v", d.Labels, err)
	}
	code, id, body = postOps(t, cp, "", `[{"deleteManifest": {"account": "main", "manifestName": "configMap settings-v000", "location": "default",
		"options": {"cascading": true}}}]`)
	if code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, body)
	}
	if tk := waitTask(t, cp, id); tk.State != "SUCCEEDED" {
		t.Fatalf("delete task: %+v", tk)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), "settings-v000", metav1.GetOptions{}); err == nil {
		t.Error("ConfigMap settings-v000 still exists after deleteManifest")
	}
	present(t, cp, q("account", "main", "kind", "ConfigMap", "name", "settings-v000"))

	var history []map[string]any
	if code, body, _ := getJSON(cp.http, "/armory/agent/operations", nil, &history); code != 200 || len(history) != 4 {
		t.Errorf("operation history: %d %s, want 4 records", code, body)
	}
	var rec map[string]any
	if code, body, _ := getJSON(cp.http, "/armory/agent/operations/deploy-1", nil, &rec); code != 200 || rec["state"] != "SUCCEEDED" || rec["agentId"] == "" {
		t.Errorf("history record: %d %s", code, body)
	}
	// A task is counted right after its row is recorded finished, which
	// GET /task may show a moment before.
	eventually(t, wait, func() string {
		code, body := rawGet(t, cp.http+"/metrics")
		for _, want := range []string{
			`kubesvc_controlplane_operations_total{state="succeeded",type="deployManifest"} 1`,
			`kubesvc_controlplane_operations_total{state="succeeded",type="deleteManifest"} 1`,
			`kubesvc_controlplane_operation_duration_seconds_count{type="deployManifest"} 1`,
		} {
			if code != http.StatusOK || !strings.Contains(body, want) {
				return fmt.Sprintf("metrics: no %s in\n%s", want, grepLines(body, "operation"))
			}
		}
		return ""
	})
}

// Bad requests are refused before anything reaches an agent.
func TestOperationsValidation(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), opWait: 30 * time.Second})
	startAgent(t, cp.grpc, account("main", cluster))
	cp.watching(t, "main")
	for body, mention := range map[string]string{
		``:                       "body",
		`{"deployManifest": {}}`: "array",
		`[{"a": {}, "b": {}}]`:   "[0]",
		`[{"explodeManifest": {"account": "main"}}]`:                                                                                            "explodeManifest",
		`[{"deployManifest": {"manifests": []}}]`:                                                                                               "account",
		`[{"deployManifest": {"account": "elsewhere", "manifests": [{}]}}]`:                                                                     `is not served by any connected agent`,
		`[{"deployManifest": {"account": "main"}}]`:                                                                                             "manifests",
		`[{"deployManifest": {"account": "main", "manifests": [{"apiVersion": "v1", "metadata": {"name": "x"}}]}}]`:                             "manifests[0].kind",
		`[{"deployManifest": {"account": "main", "manifests": ["nope"]}}]`:                                                                      "[0].deployManifest.manifests[0]: must be a JSON object",
		`[{"scaleManifest": {"account": "main", "manifestName": "deployment web"}}]`:                                                            "replicas",
		`[{"patchManifest": {"account": "main", "manifestName": "deployment web", "patchBody": {}, "options": {"mergeStrategy": "sideways"}}}]`: "mergeStrategy",
		`[{"deleteManifest": {"account": "main", "manifestName": "web"}}]`:                                                                      "kind name",
		`[{"scaleManifest": [1]}]`:            "[0].scaleManifest: expected a JSON object",
		`[{"scaleManifest": {"account": 5}}]`: "[0].scaleManifest.account: expected string, got number",
		`[{"scaleManifest": {`:                "malformed JSON at byte",
		// The agent's own static checks, made before it is sent.
		`[{"deployManifest": {"account": "main", "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]}}]`: "[0].deployManifest.moniker.app: required",
		`[{"deleteManifest": {"account": "main", "kinds": ["configMap"], "labelSelectors": {"selectors": [{"kind": "ANY"}]}}}]`:          "[0].deleteManifest.labelSelectors: required with kinds",
	} {
		code, resp := send(t, "POST", cp.http+"/kubernetes/ops", body)
		if code != http.StatusBadRequest || !strings.Contains(resp, mention) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, code, resp, mention)
		}
	}
	big := `[{"deployManifest": {"account": "main", "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "` +
		strings.Repeat("x", 5<<20) + `"}}]}}]`
	if code, resp := send(t, "POST", cp.http+"/kubernetes/ops", big); code != http.StatusBadRequest || !strings.Contains(resp, "limit") {
		t.Errorf("oversized request: %d %.200s", code, resp)
	}
	var history []any
	if _, _, err := getJSON(cp.http, "/armory/agent/operations", nil, &history); err != nil || len(history) != 0 {
		t.Errorf("refused requests reached the history: %d (%v)", len(history), err)
	}
}

// blackhole accepts connections and never answers: a cluster that hangs.
func blackhole(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// An operation whose agent dies before answering fails with a message
// saying so; one that takes longer than the wait fails as a timeout.
func TestOperationsNeverVanish(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	kubeconfig, err := os.ReadFile(cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	hung := filepath.Join(t.TempDir(), "hung.kubeconfig")
	if err := os.WriteFile(hung, bytes.ReplaceAll(kubeconfig, []byte(cluster.Host), []byte("https://"+blackhole(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), opWait: 5 * time.Second})
	acct := account("stuck", cluster)
	acct.KubeconfigFile = hung
	ag := startAgent(t, cp.grpc, acct)
	eventually(t, wait, func() string {
		if code, _, _ := getJSON(cp.http, "/agents/kubernetes/accounts/stuck", nil, nil); code != 200 {
			return "account stuck not registered"
		}
		return ""
	})
	scale := `[{"scaleManifest": {"account": "stuck", "manifestName": "deployment web", "location": "default", "replicas": 1}}]`

	// Timeout: the cluster never answers within the wait.
	_, id, _ := postOps(t, cp, "", scale)
	tk := waitTask(t, cp, id)
	if !tk.Status.Failed || !strings.Contains(tk.Status.Status, "timed out") {
		t.Errorf("hung operation: %+v, want failed with a timeout", tk)
	}

	// Agent killed while the operation runs.
	_, id, _ = postOps(t, cp, "", scale)
	eventually(t, wait, func() string {
		var rec map[string]any
		getJSON(cp.http, "/armory/agent/operations/"+id, nil, &rec)
		if rec["sentAtMs"] == nil {
			return "operation not sent yet"
		}
		return ""
	})
	ag.stopNow(t)
	tk = waitTask(t, cp, id)
	if !tk.Status.Failed || !strings.Contains(tk.Status.Status, "disconnected") {
		t.Errorf("operation of a killed agent: %+v, want failed saying the agent disconnected", tk)
	}
	// Where Orca (an EXCEPTION result object) and Deck (the history) look
	// for the reason.
	if n := len(tk.ResultObjects); n == 0 || tk.ResultObjects[n-1].Type != "EXCEPTION" || !strings.Contains(tk.ResultObjects[n-1].Message, "disconnected") {
		t.Errorf("failed task: result objects %+v, want an EXCEPTION with the reason", tk.ResultObjects)
	}
	if n := len(tk.History); n == 0 || !strings.Contains(tk.History[n-1].Status, "disconnected") {
		t.Errorf("failed task: history %+v, want the reason last", tk.History)
	}
}
