package ops

import (
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

func labeledConfigMap(name, tier string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"tier": tier}}}
}

func testDelete(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	e.deploy(nil, deployment("orphan", "nginx", 1, ""), deployment("cascade", "nginx", 1, ""))
	orphanRS := e.replicaSetsByRevision("orphan", 1)[1]
	e.replicaSetsByRevision("cascade", 1)

	res := e.run(OpDeleteManifest, map[string]any{"manifestName": "deployment orphan", "location": e.ns,
		"options": map[string]any{"cascading": false}})
	wantNames(t, res, e.ns, "deployment orphan")
	e.eventually("orphaned replicaSet released", func() error {
		if _, err := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "orphan", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmtErr("deployment still there: %v", err)
		}
		rs, err := e.kube.AppsV1().ReplicaSets(e.ns).Get(e.ctx, orphanRS.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(rs.OwnerReferences) > 0 {
			return fmtErr("owner references %v", rs.OwnerReferences)
		}
		return nil
	})

	e.run(OpDeleteManifest, map[string]any{"manifestName": "deployment cascade", "location": e.ns,
		"options": map[string]any{"cascading": true, "gracePeriodSeconds": 0}})
	e.eventually("cascaded replicaSets deleted", func() error {
		list, err := e.kube.AppsV1().ReplicaSets(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=cascade"})
		if err != nil || len(list.Items) > 0 {
			return fmtErr("%d replicaSets left (err %v)", len(list.Items), err)
		}
		return nil
	})

	// Label selectors over kinds.
	e.deploy(map[string]any{"versioned": false}, labeledConfigMap("a1", "a"), labeledConfigMap("a2", "a"), labeledConfigMap("b1", "b"))
	res = e.run(OpDeleteManifest, map[string]any{"kinds": []any{"configMap"}, "location": e.ns,
		"labelSelectors": map[string]any{"selectors": []any{map[string]any{"kind": "EQUALS", "key": "tier", "values": []any{"a"}}}}})
	wantNames(t, res, e.ns, "configMap a1", "configMap a2")
	for name, want := range map[string]bool{"a1": false, "a2": false, "b1": true} {
		_, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if exists := err == nil; exists != want {
			t.Errorf("configMap %s exists = %v, want %v (%v)", name, exists, want, err)
		}
	}
	res = e.run(OpDeleteManifest, map[string]any{"kinds": []any{"cm", "deployments"}, "location": e.ns, "labelSelectors": "tier in (b)"})
	wantNames(t, res, e.ns, "configMap b1")
	res = e.run(OpDeleteManifest, map[string]any{"kinds": []any{"configMap"}, "location": e.ns,
		"labelSelectors": map[string]any{"selectors": []any{map[string]any{"kind": "EXISTS", "key": "tier"}}}})
	wantNames(t, res, e.ns)

	// Already gone: not an error, nothing reported.
	res = e.run(OpDeleteManifest, map[string]any{"manifestName": "configMap never-was", "location": e.ns})
	wantNames(t, res, e.ns)
	_, err := e.try(OpDeleteManifest, map[string]any{"kinds": []any{"nosuchkind"}, "location": e.ns, "labelSelectors": "a=b"})
	wantValidation(t, err, "kinds[0]", `unknown kind "nosuchkind"`)
}

func job(name, generateName string) map[string]any {
	md := map[string]any{}
	if name != "" {
		md["name"] = name
	}
	if generateName != "" {
		md["generateName"] = generateName
	}
	return map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": md,
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"restartPolicy": "Never",
			"containers": []any{map[string]any{"name": "m", "image": "busybox", "command": []any{"true"}}}}}}}
}

func testRunJob(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	desc := map[string]any{"account": "test", "application": "shop", "namespace": e.ns, "manifest": job("migrate", "")}
	res := e.run(OpRunJob, desc)
	wantNames(t, res, e.ns, "job migrate")
	if got := res.DeployedNamesByLocation[e.ns]; len(got) != 1 || got[0] != "job migrate" {
		t.Errorf("deployedNamesByLocation = %v", res.DeployedNamesByLocation)
	}
	if len(res.CreatedArtifacts) != 1 || res.CreatedArtifacts[0].Type != "kubernetes/job" || res.CreatedArtifacts[0].Reference != "migrate" {
		t.Errorf("created artifacts %+v", res.CreatedArtifacts)
	}
	j1, err := e.kube.BatchV1().Jobs(e.ns).Get(e.ctx, "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, "job annotations", j1.Annotations, map[string]string{AnnotationRecreate: "true", AnnotationMonikerApplication: "shop", AnnotationMonikerCluster: "job migrate"})
	checkMap(t, "job pod template labels", j1.Spec.Template.Labels, map[string]string{LabelManagedBy: "spinnaker", LabelName: "shop"})

	// Running it again makes a new Job of the same name.
	e.run(OpRunJob, desc)
	j2, err := e.kube.BatchV1().Jobs(e.ns).Get(e.ctx, "migrate", metav1.GetOptions{})
	if err != nil || j2.UID == j1.UID {
		t.Errorf("second run: uid %s then %s (err %v), want a new Job", j1.UID, j2.UID, err)
	}

	// generateName: the server names it; the result reports that name.
	res = e.run(OpRunJob, map[string]any{"application": "shop", "namespace": e.ns, "manifest": job("", "batch-")})
	names := res.ManifestNamesByNamespace[e.ns]
	if len(names) != 1 || !strings.HasPrefix(names[0], "job batch-") {
		t.Fatalf("generateName job names %v", names)
	}
	name := strings.TrimPrefix(names[0], "job ")
	if _, err := e.kube.BatchV1().Jobs(e.ns).Get(e.ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("generated job %s: %v", name, err)
	}
	if res.CreatedArtifacts[0].Reference != name {
		t.Errorf("artifact reference %q, want %q", res.CreatedArtifacts[0].Reference, name)
	}
}

func replicaSet(name string, replicas int) map[string]any {
	return map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx"}}}}}}
}

func testTraffic(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	front := map[string]any{"app": "frontend-lb"}
	res := e.deploy(map[string]any{"services": []any{"service front"}}, service("front", map[string]any{"lb": "front"}), replicaSet("fe", 2))
	wantNames(t, res, e.ns, "service front", "replicaSet fe-v000")
	_ = front

	// podLabels waits until the RS has 2 pods and all have (or lack) lb=front.
	podLabels := func(want bool) {
		t.Helper()
		e.eventually("pods with lb=front: "+map[bool]string{true: "yes", false: "no"}[want], func() error {
			list, err := e.kube.CoreV1().Pods(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=fe"})
			if err != nil {
				return err
			}
			if len(list.Items) != 2 {
				return fmtErr("%d pods", len(list.Items))
			}
			for _, p := range list.Items {
				if (p.Labels["lb"] == "front") != want {
					return fmtErr("pod %s labels %v", p.Name, p.Labels)
				}
			}
			return nil
		})
	}
	template := func(name string) map[string]string {
		rs, err := e.kube.AppsV1().ReplicaSets(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rs.Annotations[AnnotationLoadBalancers]; got != `["service front"]` {
			t.Errorf("%s: %s = %q", name, AnnotationLoadBalancers, got)
		}
		return rs.Spec.Template.Labels
	}
	if template("fe-v000")["lb"] != "front" {
		t.Fatalf("deployed with traffic, template labels %v", template("fe-v000"))
	}
	podLabels(true)

	target := map[string]any{"manifestName": "replicaSet fe-v000", "location": e.ns}
	res = e.run(OpDisableManifest, target)
	if template("fe-v000")["lb"] != "" {
		t.Errorf("disabled, template labels %v", template("fe-v000"))
	}
	podLabels(false)
	if len(res.ManifestNamesByNamespace[e.ns]) != 3 {
		t.Errorf("disable result names %v, want the replicaSet and its 2 pods", res.ManifestNamesByNamespace)
	}
	svc, _ := e.kube.CoreV1().Services(e.ns).Get(e.ctx, "front", metav1.GetOptions{})
	if len(svc.Spec.Selector) != 1 || svc.Spec.Selector["lb"] != "front" {
		t.Errorf("service selector changed: %v", svc.Spec.Selector)
	}
	e.run(OpEnableManifest, map[string]any{"manifestName": "replicaSet fe-v000", "location": e.ns, "loadBalancers": []any{"service front"}})
	if template("fe-v000")["lb"] != "front" {
		t.Errorf("enabled, template labels %v", template("fe-v000"))
	}
	podLabels(true)

	// enableTraffic false: annotated, not attached.
	res = e.deploy(map[string]any{"services": []any{"service front"}, "enableTraffic": false}, replicaSet("fe", 0))
	wantNames(t, res, e.ns, "replicaSet fe-v001")
	if template("fe-v001")["lb"] != "" {
		t.Errorf("deployed without traffic, template labels %v", template("fe-v001"))
	}

	e.deploy(nil, service("clash", map[string]any{"app": "fe"}))
	_, err := e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"services": []any{"service clash"}, "manifests": []any{replicaSet("fe", 0)}})
	wantValidation(t, err, "manifests[0].metadata.annotations", "no label keys in common")
	_, err = e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"services": []any{"service ghost"}, "manifests": []any{replicaSet("fe", 0)}})
	wantValidation(t, err, "services", "does not exist")
}

func testClusterValidation(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	bad := map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests": []any{configMap("first", nil, nil), map[string]any{"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": map[string]any{"name": "g"}}}}
	_, err := e.try(OpDeployManifest, bad)
	wantValidation(t, err, "manifests[1].kind", `unknown kind "Gadget" in apiVersion "example.com/v1"`)
	if !strings.HasPrefix(err.Error(), "deployManifest: manifests[1].kind: ") {
		t.Errorf("error text %q", err)
	}
	list, _ := e.kube.CoreV1().ConfigMaps(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: LabelManagedBy})
	if len(list.Items) != 0 {
		t.Errorf("a rejected deploy created %d configMaps", len(list.Items))
	}

	b := []byte(`{"moniker":{"app":"shop"},"manifests":[{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g"}}]}`)
	wantValidation(t, e.ex.Validate(context.Background(), OpDeployManifest, b), "manifests[0].kind", "unknown kind")
	good := []byte(`{"moniker":{"app":"shop"},"namespaceOverride":"` + e.ns + `","manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"v"}}]}`)
	if err := e.ex.Validate(context.Background(), OpDeployManifest, good); err != nil {
		t.Errorf("Validate of a good deploy: %v", err)
	}
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "v-v000", metav1.GetOptions{}); err == nil {
		t.Error("Validate created an object")
	}

	_, err = e.try(OpScaleManifest, map[string]any{"manifestName": "frobnitz x", "location": e.ns, "replicas": 1})
	wantValidation(t, err, "manifestName", `unknown kind "frobnitz"`)
	_, err = e.ex.Execute(e.ctx, OpDeployManifest, []byte(`{"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}`))
	wantValidation(t, err, "", "malformed JSON")

	// Cluster-side failures are not validation errors, and wrap the API error.
	_, err = e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": "no-such-namespace",
		"manifests": []any{configMap("x", nil, nil)}})
	var ve *ValidationError
	if errors.As(err, &ve) || !apierrors.IsNotFound(err) {
		t.Errorf("deploy into a missing namespace: %v; want a wrapped NotFound, not a ValidationError", err)
	}
	if !strings.Contains(err.Error(), "deployManifest: ") || !strings.Contains(err.Error(), "configMap x-v000 in namespace no-such-namespace") {
		t.Errorf("error text %q", err)
	}
}
