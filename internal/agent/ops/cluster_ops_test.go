package ops

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

func testScale(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	e.deploy(nil, deployment("web", "nginx", 1, ""))
	res := e.run(OpScaleManifest, map[string]any{"manifestName": "deployment web", "location": e.ns, "replicas": "3"})
	wantNames(t, res, e.ns, "deployment web")
	dep, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *dep.Spec.Replicas)
	}
	e.run(OpScaleManifest, map[string]any{"manifestName": "deploy web", "location": e.ns, "replicas": 0})
	dep, _ = e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if *dep.Spec.Replicas != 0 {
		t.Errorf("replicas %d, want 0", *dep.Spec.Replicas)
	}
	_, err := e.try(OpScaleManifest, map[string]any{"manifestName": "deployment missing", "location": e.ns, "replicas": 1})
	if !apierrors.IsNotFound(err) {
		t.Errorf("scaling a missing deployment: %v, want a wrapped NotFound", err)
	}
	e.deploy(map[string]any{"versioned": false}, configMap("cm", nil, nil))
	if _, err = e.try(OpScaleManifest, map[string]any{"manifestName": "configMap cm", "location": e.ns, "replicas": 1}); err == nil {
		t.Error("scaled a configMap")
	}
}

func testPatch(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	d := deployment("web", "nginx:1", 1, "")
	pod := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	pod["containers"] = append(pod["containers"].([]any), map[string]any{"name": "sidecar", "image": "busybox"})
	e.deploy(nil, d)
	target := map[string]any{"manifestName": "deployment web", "location": e.ns}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range target {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	// options.record writes the change cause kubectl rollout history shows,
	// in the patch (an object) or after it (a JSON patch).
	e.run(OpPatchManifest, with(map[string]any{"patchBody": map[string]any{"metadata": map[string]any{"labels": map[string]any{"tier": "front"}}},
		"options": map[string]any{"mergeStrategy": "merge", "record": true}}))
	rec, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if got := rec.Annotations[annotationChangeCause]; got != "kubesvc patchManifest deployment web --type=merge" || rec.Labels["tier"] != "front" {
		t.Errorf("recorded merge patch: change cause %q, labels %v", got, rec.Labels)
	}
	e.run(OpPatchManifest, with(map[string]any{"patchBody": []any{map[string]any{"op": "add", "path": "/metadata/labels/zone", "value": "a"}},
		"options": map[string]any{"mergeStrategy": "json", "record": "true"}}))
	rec, _ = e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if got := rec.Annotations[annotationChangeCause]; got != "kubesvc patchManifest deployment web --type=json" || rec.Labels["zone"] != "a" {
		t.Errorf("recorded JSON patch: change cause %q, labels %v", got, rec.Labels)
	}

	// strategic (the default): containers merge by name; artifacts are bound.
	res := e.run(OpPatchManifest, with(map[string]any{
		"patchBody": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "web", "image": "nginx"}}}}}},
		"allArtifacts": []any{map[string]any{"type": "docker/image", "name": "nginx", "reference": "nginx:2"}},
	}))
	wantNames(t, res, e.ns, "deployment web")
	if len(res.BoundArtifacts) != 1 || res.BoundArtifacts[0].Reference != "nginx:2" {
		t.Errorf("bound artifacts %+v", res.BoundArtifacts)
	}
	dep, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[0].Image != "nginx:2" || cs[1].Image != "busybox" {
		t.Errorf("containers after strategic patch: %+v", cs)
	}

	// merge: a JSON merge patch replaces lists.
	e.run(OpPatchManifest, with(map[string]any{"options": map[string]any{"mergeStrategy": "merge"},
		"patchBody": map[string]any{"metadata": map[string]any{"labels": map[string]any{"merged": "yes"}},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "only", "image": "nginx:3"}}}}}}}))
	dep, _ = e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	cs = dep.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "only" || dep.Labels["merged"] != "yes" {
		t.Errorf("after merge patch: labels %v containers %+v", dep.Labels, cs)
	}

	// json: RFC 6902 operations.
	e.run(OpPatchManifest, with(map[string]any{"options": map[string]any{"mergeStrategy": "json"},
		"patchBody": []any{
			map[string]any{"op": "add", "path": "/metadata/annotations/patched", "value": "json"},
			map[string]any{"op": "replace", "path": "/spec/replicas", "value": 2},
		}}))
	dep, _ = e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if dep.Annotations["patched"] != "json" || *dep.Spec.Replicas != 2 {
		t.Errorf("after json patch: annotations %v replicas %d", dep.Annotations, *dep.Spec.Replicas)
	}
	_, err := e.try(OpPatchManifest, with(map[string]any{"options": map[string]any{"mergeStrategy": "json"},
		"patchBody": []any{map[string]any{"op": "test", "path": "/spec/replicas", "value": 9}}}))
	if err == nil {
		t.Error("a json patch whose test operation fails succeeded")
	}
}

// replicaSetsByRevision waits until the deployment's ReplicaSets include
// revision want, and returns them by revision.
func (e *clusterEnv) replicaSetsByRevision(name string, want int) map[int]appsv1.ReplicaSet {
	e.t.Helper()
	var out map[int]appsv1.ReplicaSet
	e.eventually("replicaSet revision "+strconv.Itoa(want), func() error {
		list, err := e.kube.AppsV1().ReplicaSets(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return err
		}
		out = map[int]appsv1.ReplicaSet{}
		for _, rs := range list.Items {
			if r, err := strconv.Atoi(rs.Annotations[AnnotationRevision]); err == nil {
				out[r] = rs
			}
		}
		if _, ok := out[want]; !ok {
			return fmtErr("revisions %v", slices.Sorted(maps.Keys(out)))
		}
		return nil
	})
	return out
}

func testUndoRollout(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	image := func() string {
		dep, err := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "roll", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return dep.Spec.Template.Spec.Containers[0].Image
	}
	e.deploy(nil, deployment("roll", "nginx:1", 1, ""))
	e.replicaSetsByRevision("roll", 1)
	e.deploy(nil, deployment("roll", "nginx:2", 1, ""))
	rss := e.replicaSetsByRevision("roll", 2)
	if rss[1].Spec.Template.Spec.Containers[0].Image != "nginx:1" || rss[2].Spec.Template.Spec.Containers[0].Image != "nginx:2" {
		t.Fatalf("replicaSets by revision: %v / %v", rss[1].Spec.Template.Spec.Containers, rss[2].Spec.Template.Spec.Containers)
	}

	res := e.run(OpUndoRolloutManifest, map[string]any{"manifestName": "deployment roll", "location": e.ns, "numRevisionsBack": 1})
	wantNames(t, res, e.ns, "deployment roll")
	if got := image(); got != "nginx:1" {
		t.Fatalf("after undo (1 back) image %q, want nginx:1", got)
	}
	dep, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "roll", metav1.GetOptions{})
	if dep.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != "" {
		t.Errorf("rolled-back template kept %s", appsv1.DefaultDeploymentUniqueLabelKey)
	}
	// The controller moves the old ReplicaSet to revision 3.
	rss = e.replicaSetsByRevision("roll", 3)
	if rss[3].Spec.Template.Spec.Containers[0].Image != "nginx:1" {
		t.Errorf("revision 3 runs %s, want nginx:1", rss[3].Spec.Template.Spec.Containers[0].Image)
	}

	e.run(OpUndoRolloutManifest, map[string]any{"manifestName": "deployment roll", "location": e.ns, "revision": 2})
	if got := image(); got != "nginx:2" {
		t.Errorf("after undo to revision 2 image %q, want nginx:2", got)
	}
	e.replicaSetsByRevision("roll", 4)
	// Neither given: the previous revision.
	e.run(OpUndoRolloutManifest, map[string]any{"manifestName": "deployment roll", "location": e.ns})
	if got := image(); got != "nginx:1" {
		t.Errorf("after undo to the previous revision image %q, want nginx:1", got)
	}
	_, err := e.try(OpUndoRolloutManifest, map[string]any{"manifestName": "deployment roll", "location": e.ns, "revision": 42})
	if err == nil {
		t.Error("undo to a missing revision succeeded")
	}
	_, err = e.try(OpUndoRolloutManifest, map[string]any{"manifestName": "deployment roll", "location": e.ns, "numRevisionsBack": 9})
	if err == nil {
		t.Error("undo 9 revisions back succeeded")
	}
	// StatefulSets roll back through their ControllerRevisions.
	sts := func(image string) map[string]any {
		return map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": map[string]any{"name": "db"},
			"spec": map[string]any{"serviceName": "db", "replicas": 1,
				"selector": map[string]any{"matchLabels": map[string]any{"app": "db"}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "db"}},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "db", "image": image}}}}}}
	}
	revisions := func(n int) {
		e.eventually(fmt.Sprintf("%d controller revisions", n), func() error {
			list, err := e.kube.AppsV1().ControllerRevisions(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=db"})
			if err != nil || len(list.Items) < n {
				return fmtErr("%d revisions (err %v)", len(list.Items), err)
			}
			return nil
		})
	}
	e.deploy(nil, sts("busybox:1"))
	revisions(1)
	e.deploy(nil, sts("busybox:2"))
	revisions(2)
	e.run(OpUndoRolloutManifest, map[string]any{"manifestName": "statefulSet db", "location": e.ns, "numRevisionsBack": 1})
	ss, err := e.kube.AppsV1().StatefulSets(e.ns).Get(e.ctx, "db", metav1.GetOptions{})
	if err != nil || ss.Spec.Template.Spec.Containers[0].Image != "busybox:1" {
		t.Errorf("statefulSet after undo: %v (err %v), want busybox:1", ss.Spec.Template.Spec.Containers, err)
	}

	e.deploy(map[string]any{"versioned": false}, configMap("cm", nil, nil))
	_, err = e.try(OpUndoRolloutManifest, map[string]any{"manifestName": "configMap cm", "location": e.ns})
	wantValidation(t, err, "manifestName", "does not support undo rollout")
}

func testPauseResumeRestart(t *testing.T, c *testenv.Cluster) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newClusterEnv(t, c, Options{Now: func() time.Time { return at }})
	e.deploy(nil, deployment("web", "nginx:1", 1, ""))
	target := map[string]any{"manifestName": "deployment web", "location": e.ns}
	paused := func() bool {
		dep, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
		return dep.Spec.Paused
	}
	res := e.run(OpPauseRolloutManifest, target)
	wantNames(t, res, e.ns, "deployment web")
	if !paused() {
		t.Fatal("not paused")
	}
	_, err := e.try(OpRollingRestartManifest, target)
	if err == nil {
		t.Error("restarted a paused deployment")
	}
	e.run(OpResumeRolloutManifest, target)
	if paused() {
		t.Fatal("still paused")
	}
	e.run(OpRollingRestartManifest, target)
	dep, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if got := dep.Spec.Template.Annotations[AnnotationRestartedAt]; got != "2030-01-02T03:04:05Z" {
		t.Errorf("restartedAt = %q", got)
	}
	e.replicaSetsByRevision("web", 2) // the restart rolled out a new ReplicaSet
	e.deploy(map[string]any{"versioned": false}, configMap("cm", nil, nil))
	_, err = e.try(OpPauseRolloutManifest, map[string]any{"manifestName": "configMap cm", "location": e.ns})
	wantValidation(t, err, "manifestName", "does not support pauseRolloutManifest")
}
