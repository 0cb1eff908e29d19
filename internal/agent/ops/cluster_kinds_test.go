package ops

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

func widget(name string, spec map[string]any) map[string]any {
	return map[string]any{"apiVersion": "kubesvc.test/v1", "kind": "Widget", "metadata": map[string]any{"name": name}, "spec": spec}
}

// customResourceDefinition is a namespaced CRD of group and kind, served
// at v1, its spec free-form.
func customResourceDefinition(group, kind, plural string) map[string]any {
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": plural, "singular": strings.ToLower(kind), "kind": kind},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object",
					"properties": map[string]any{"spec": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}},
		},
	}
}

func testCustomResources(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	// Unknown until the CRD exists: a validation error naming the field.
	_, err := e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests": []any{configMap("before", nil, nil), widget("w0", nil)}})
	wantValidation(t, err, "manifests[1].kind", `unknown kind "Widget" in apiVersion "kubesvc.test/v1"`)

	crd := customResourceDefinition("kubesvc.test", "Widget", "widgets")
	res := e.deploy(nil, crd)
	wantNames(t, res, "", "customResourceDefinition widgets.kubesvc.test")
	t.Cleanup(func() { _ = e.dyn.Resource(crdGVR).Delete(e.ctx, "widgets.kubesvc.test", metav1.DeleteOptions{}) })
	e.eventually("CRD established", func() error {
		u, err := e.dyn.Resource(crdGVR).Get(e.ctx, "widgets.kubesvc.test", metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return nil
			}
		}
		return fmt.Errorf("not established: %v", conds)
	})

	// Client-side apply of a custom resource uses a JSON merge patch.
	csa := e.withOptions(Options{ServerSideApply: SSANever})
	var res2 Result
	e.eventually("deploy a widget once discovery has it", func() error {
		b, err := csa.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
			"manifests": []any{widget("w1", map[string]any{"size": 1, "color": "red"})}})
		res2 = b
		return err
	})
	wantNames(t, res2, e.ns, "Widget.kubesvc.test w1")
	csa.deploy(nil, widget("w1", map[string]any{"size": 2}))
	gvr := schema.GroupVersionResource{Group: "kubesvc.test", Version: "v1", Resource: "widgets"}
	w, err := e.dyn.Resource(gvr).Namespace(e.ns).Get(e.ctx, "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, _, _ := unstructured.NestedMap(w.Object, "spec")
	if len(spec) != 1 || spec["size"] != int64(2) {
		t.Errorf("widget spec after client-side re-apply = %v, want only size 2", spec)
	}
	if w.GetAnnotations()[AnnotationArtifactType] != "kubernetes/Widget.kubesvc.test" {
		t.Errorf("artifact type annotation %q", w.GetAnnotations()[AnnotationArtifactType])
	}

	// Strategic merge patches need built-in types.
	_, err = e.try(OpPatchManifest, map[string]any{"manifestName": "Widget.kubesvc.test w1", "location": e.ns,
		"patchBody": map[string]any{"spec": map[string]any{"size": 3}}})
	wantValidation(t, err, "options.mergeStrategy", "strategic merge patch is not supported")
	e.run(OpPatchManifest, map[string]any{"manifestName": "widget w1", "location": e.ns,
		"patchBody": map[string]any{"spec": map[string]any{"size": 3}}, "options": map[string]any{"mergeStrategy": "merge"}})
	w, _ = e.dyn.Resource(gvr).Namespace(e.ns).Get(e.ctx, "w1", metav1.GetOptions{})
	if v, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); v != 3 {
		t.Errorf("size after merge patch = %d", v)
	}
	res = e.run(OpDeleteManifest, map[string]any{"manifestName": "Widget.kubesvc.test w1", "location": e.ns})
	wantNames(t, res, e.ns, "Widget.kubesvc.test w1")
}

func testStrategies(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	noVersion := map[string]any{"versioned": false}

	rc := configMap("rc", map[string]any{"a": "1"}, map[string]any{AnnotationRecreate: "true"})
	e.deploy(noVersion, rc)
	first, _ := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "rc", metav1.GetOptions{})
	e.deploy(noVersion, configMap("rc", map[string]any{"a": "1"}, map[string]any{AnnotationRecreate: "true"}))
	second, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "rc", metav1.GetOptions{})
	if err != nil || second.UID == first.UID {
		t.Errorf("recreate: uid %s then %s (err %v), want a new object", first.UID, second.UID, err)
	}

	rp := func() map[string]any {
		return configMap("rp", map[string]any{"a": "1"}, map[string]any{AnnotationReplace: "true"})
	}
	e.deploy(noVersion, rp())
	first, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "rp", metav1.GetOptions{})
	first.Labels["oob"] = "x"
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Update(e.ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deploy(noVersion, rp())
	second, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "rp", metav1.GetOptions{})
	if second.UID != first.UID || second.Labels["oob"] != "" {
		t.Errorf("replace: uid %s then %s, labels %v; want the same object without the out-of-band label", first.UID, second.UID, second.Labels)
	}

	capDep := func() map[string]any {
		d := deployment("cap", "nginx", 1, "")
		d["metadata"].(map[string]any)["annotations"] = map[string]any{AnnotationUseSourceCapacity: "true"}
		return d
	}
	e.deploy(nil, capDep())
	e.run(OpScaleManifest, map[string]any{"manifestName": "deployment cap", "location": e.ns, "replicas": 4})
	e.deploy(nil, capDep())
	dep, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "cap", metav1.GetOptions{})
	if *dep.Spec.Replicas != 4 {
		t.Errorf("use-source-capacity: replicas %d, want the live 4", *dep.Spec.Replicas)
	}
}

// A CustomResourceDefinition and objects of its kind in one deploy, in any
// order: the objects are applied once the API server serves the kind (as
// Clouddriver does since spinnaker/clouddriver#4298). A kind no manifest
// of the deploy defines is still refused up front.
func testCRDWithItsObjects(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	gadget := map[string]any{"apiVersion": "gadgets.kubesvc.test/v1", "kind": "Gadget",
		"metadata": map[string]any{"name": "g1"}, "spec": map[string]any{"size": 1}}
	crd := customResourceDefinition("gadgets.kubesvc.test", "Gadget", "gadgets")
	t.Cleanup(func() {
		_ = e.dyn.Resource(crdGVR).Delete(e.ctx, "gadgets.gadgets.kubesvc.test", metav1.DeleteOptions{})
	})
	_, err := e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests": []any{gadget, map[string]any{"apiVersion": "gadgets.kubesvc.test/v2", "kind": "Gadget", "metadata": map[string]any{"name": "g2"}}, crd}})
	wantValidation(t, err, "manifests[1].kind", `unknown kind "Gadget" in apiVersion "gadgets.kubesvc.test/v2"`)
	// What would refuse the deploy is found before its first write: here
	// a required artifact nothing binds; the CRD is not created.
	_, err = e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests":         []any{gadget, crd},
		"requiredArtifacts": []any{map[string]any{"type": "docker/image", "name": "nope", "reference": "nope:1"}}})
	wantValidation(t, err, "requiredArtifacts", "")
	if _, err := e.dyn.Resource(crdGVR).Get(e.ctx, "gadgets.gadgets.kubesvc.test", metav1.GetOptions{}); err == nil {
		t.Fatal("a refused deploy created its CRD")
	}

	res := e.deploy(nil, gadget, configMap("with-gadget", nil, nil), crd)
	wantNames(t, res, e.ns, "Gadget.gadgets.kubesvc.test g1", "configMap with-gadget-v000")
	wantNames(t, res, "", "customResourceDefinition gadgets.gadgets.kubesvc.test")
	gvr := schema.GroupVersionResource{Group: "gadgets.kubesvc.test", Version: "v1", Resource: "gadgets"}
	if _, err := e.dyn.Resource(gvr).Namespace(e.ns).Get(e.ctx, "g1", metav1.GetOptions{}); err != nil {
		t.Errorf("gadget g1: %v", err)
	}
}

// A deploy's labelSelectors choose the manifests applied, on their labels
// as deployed (moniker labels included), as kubectl apply --selector does
// for Clouddriver; choosing none fails before anything is written unless
// allowNothingSelected.
func testDeployLabelSelectors(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	a := configMap("sel-a", nil, nil)
	a["metadata"].(map[string]any)["labels"] = map[string]any{"tier": "a"}
	b := configMap("sel-b", nil, nil)
	b["metadata"].(map[string]any)["labels"] = map[string]any{"tier": "b"}
	selector := func(key, value string) map[string]any {
		return map[string]any{"selectors": []any{map[string]any{"kind": "EQUALS", "key": key, "values": []any{value}}}}
	}
	res := e.deploy(map[string]any{"labelSelectors": selector("tier", "a")}, a, b)
	wantNames(t, res, e.ns, "configMap sel-a-v000")
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "sel-b-v000", metav1.GetOptions{}); err == nil {
		t.Error("sel-b was deployed though the selector excludes it")
	}
	// A label the deploy adds selects too.
	res = e.deploy(map[string]any{"labelSelectors": selector("app.kubernetes.io/managed-by", "spinnaker")}, b)
	wantNames(t, res, e.ns, "configMap sel-b-v000")

	_, err := e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests": []any{a, b}, "labelSelectors": selector("tier", "c")})
	wantValidation(t, err, "labelSelectors", "selects none of the 2 manifests")
	res = e.deploy(map[string]any{"labelSelectors": selector("tier", "c"), "allowNothingSelected": true}, a, b)
	wantNames(t, res, e.ns)
}
