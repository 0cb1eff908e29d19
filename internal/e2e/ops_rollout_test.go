package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// opsEnv is a cluster with a controller manager (Deployments roll out), a
// control plane with the operation API and an agent serving the cluster as
// account "main"; ops go through POST /kubernetes/ops and GET /task/{id}.
type opsEnv struct {
	t  *testing.T
	cp *controlPlane
	cs *kubernetes.Clientset
}

func startOpsEnv(t *testing.T) *opsEnv {
	t.Helper()
	cluster := testenv.StartForTest(t, testenv.Options{ControllerManager: true})
	cs, _ := clients(t, cluster)
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), opWait: 30 * time.Second})
	startAgent(t, cp.grpc, account("main", cluster))
	cp.watching(t, "main")
	return &opsEnv{t: t, cp: cp, cs: cs}
}

// do posts one operation ({"type": {...}}) and waits for its task to end.
func (e *opsEnv) do(typ, desc string) task {
	e.t.Helper()
	code, id, body := postOps(e.t, e.cp, "", fmt.Sprintf(`[{%q: %s}]`, typ, desc))
	if code != http.StatusOK {
		e.t.Fatalf("POST %s: %d %s", typ, code, body)
	}
	return waitTask(e.t, e.cp, id)
}

// ok runs an operation that must succeed.
func (e *opsEnv) ok(typ, desc string) task {
	e.t.Helper()
	tk := e.do(typ, desc)
	if tk.State != "SUCCEEDED" || tk.Status.Failed {
		e.t.Fatalf("%s %s: %+v", typ, desc, tk)
	}
	return tk
}

// eventually waits for what kube-controller-manager does (ReplicaSets,
// Pods, garbage collection): two minutes, as in the agent's operation
// tests (internal/agent/ops), since on a loaded CI machine a rollout once
// took over one.
func (e *opsEnv) eventually(what string, cond func() error) {
	e.t.Helper()
	eventually(e.t, 2*time.Minute, func() string {
		if err := cond(); err != nil {
			return what + ": " + err.Error()
		}
		return ""
	})
}

// deployment is a Deployment manifest in namespace default.
func deployment(name, image string, annotations string) string {
	if annotations == "" {
		annotations = "{}"
	}
	return fmt.Sprintf(`{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": %q, "namespace": "default", "annotations": %s},
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": %q}},
   "template": {"metadata": {"labels": {"app": %q}}, "spec": {"containers": [{"name": "c", "image": %q}]}}}}`,
		name, annotations, name, name, image)
}

func deployOf(manifests ...string) string {
	return `{"account": "main", "moniker": {"app": "shop"}, "manifests": [` + strings.Join(manifests, ",") + `]}`
}

// revisions waits until name's ReplicaSets include revision want and
// returns their images by revision.
func (e *opsEnv) revisions(name string, want int) map[int]string {
	e.t.Helper()
	var out map[int]string
	e.eventually(fmt.Sprintf("deployment %s revision %d", name, want), func() error {
		list, err := e.cs.AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return err
		}
		out = map[int]string{}
		for _, rs := range list.Items {
			if r, err := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"]); err == nil {
				out[r] = rs.Spec.Template.Spec.Containers[0].Image
			}
		}
		if _, ok := out[want]; !ok {
			return fmt.Errorf("revisions %v", out)
		}
		return nil
	})
	return out
}

func (e *opsEnv) image(name string) string {
	e.t.Helper()
	d, err := e.cs.AppsV1().Deployments("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// Rollout operations through the control plane: undo (numRevisionsBack,
// revision), pause, resume, rolling restart, each checked in the cluster.
func TestOpsRolloutThroughTheControlPlane(t *testing.T) {
	t.Parallel()
	e := startOpsEnv(t)
	e.ok("deployManifest", deployOf(deployment("roll", "nginx:1", "")))
	e.revisions("roll", 1)
	e.ok("deployManifest", deployOf(deployment("roll", "nginx:2", "")))
	if revs := e.revisions("roll", 2); revs[1] != "nginx:1" || revs[2] != "nginx:2" {
		t.Fatalf("revisions %v", revs)
	}

	tk := e.ok("undoRolloutManifest", `{"account": "main", "manifestName": "deployment roll", "location": "default", "numRevisionsBack": 1}`)
	if got := e.image("roll"); got != "nginx:1" {
		t.Fatalf("after undo 1 revision back: image %s, want nginx:1", got)
	}
	if len(tk.ResultObjects) != 1 || !strings.Contains(strings.Join(tk.ResultObjects[0].ManifestNamesByNamespace["default"], ","), "deployment roll") {
		t.Errorf("undo result %+v", tk.ResultObjects)
	}
	// The controller moves the nginx:1 ReplicaSet to revision 3.
	if revs := e.revisions("roll", 3); revs[3] != "nginx:1" {
		t.Errorf("revision 3 runs %s, want nginx:1", revs[3])
	}
	e.ok("undoRolloutManifest", `{"account": "main", "manifestName": "deployment roll", "location": "default", "revision": 2}`)
	if got := e.image("roll"); got != "nginx:2" {
		t.Errorf("after undo to revision 2: image %s, want nginx:2", got)
	}
	tk = e.do("undoRolloutManifest", `{"account": "main", "manifestName": "deployment roll", "location": "default", "revision": 42}`)
	if !tk.Status.Failed || !strings.Contains(tk.Status.Status, "revision 42") {
		t.Errorf("undo to a missing revision: %+v, want failed naming revision 42", tk)
	}

	target := `{"account": "main", "manifestName": "deployment roll", "location": "default"}`
	paused := func() bool {
		d, err := e.cs.AppsV1().Deployments("default").Get(context.Background(), "roll", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Paused
	}
	e.ok("pauseRolloutManifest", target)
	if !paused() {
		t.Fatal("pauseRolloutManifest: deployment not paused")
	}
	tk = e.do("rollingRestartManifest", target)
	if !tk.Status.Failed || !strings.Contains(tk.Status.Status, "resume it first") {
		t.Errorf("restart of a paused deployment: %+v, want failed asking to resume", tk)
	}
	e.ok("resumeRolloutManifest", target)
	if paused() {
		t.Fatal("resumeRolloutManifest: deployment still paused")
	}
	e.revisions("roll", 4)
	e.ok("rollingRestartManifest", target)
	d, err := e.cs.AppsV1().Deployments("default").Get(context.Background(), "roll", metav1.GetOptions{})
	if err != nil || d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Fatalf("rollingRestartManifest: template annotations %v (err %v)", d.Spec.Template.Annotations, err)
	}
	// The restart rolls out a new ReplicaSet (a new revision).
	e.revisions("roll", 5)

	var history []map[string]any
	if code, body, _ := getJSON(e.cp.http, "/armory/agent/operations", nil, &history); code != 200 || len(history) != 9 {
		t.Errorf("operation history: %d %s, want 9 records", code, body)
	}
}
