package ops

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// TestOperationsOnCluster runs every operation against one real API server
// with kube-controller-manager (no kubelet: pods never run, but Deployments
// get ReplicaSets and rollout history). Subtests run in parallel, each in
// its own namespace.
func TestOperationsOnCluster(t *testing.T) {
	c := testenv.StartForTest(t, testenv.Options{ControllerManager: true})
	for name, fn := range map[string]func(*testing.T, *testenv.Cluster){
		"Deploy":          testDeploy,
		"ApplyModes":      testApplyModes,
		"CustomResources": testCustomResources,
		"CRDWithObjects":  testCRDWithItsObjects,
		"LabelSelectors":  testDeployLabelSelectors,
		"Strategies":      testStrategies,
		"Scale":           testScale,
		"Patch":           testPatch,
		"UndoRollout":     testUndoRollout,
		"PauseResume":     testPauseResumeRestart,
		"Delete":          testDelete,
		"RunJob":          testRunJob,
		"Traffic":         testTraffic,
		"Validation":      testClusterValidation,
		"SecretValues":    testSecretValuesStayIn,
		"Versions":        testVersionsNeverOverwrite,
		"VersionReuse":    testVersionsReuseIdenticalContent,
		"TypedPatchError": testTypedPatchErrorNotRetried,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, c)
		})
	}
}

func testDeploy(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	nginx := map[string]any{"type": "docker/image", "name": "nginx", "reference": "nginx:1.27"}
	res := e.deploy(map[string]any{"requiredArtifacts": []any{nginx}},
		deployment("web", "nginx", 1, "cfg"),
		service("web", map[string]any{"app": "web"}),
		configMap("cfg", map[string]any{"a": "1"}, nil))
	wantNames(t, res, e.ns, "configMap cfg-v000", "deployment web", "service web")

	// Created and bound artifacts, Clouddriver-shaped.
	var cmArt *Artifact
	for i, a := range res.CreatedArtifacts {
		if a.Type == "kubernetes/configMap" {
			cmArt = &res.CreatedArtifacts[i]
		}
	}
	if cmArt == nil || cmArt.Name != "cfg" || cmArt.Version != "v000" || cmArt.Reference != "cfg-v000" || cmArt.Location != e.ns || cmArt.account() != "test" {
		t.Fatalf("configMap artifact = %+v", cmArt)
	}
	if len(res.CreatedArtifacts) != 3 {
		t.Errorf("created artifacts %+v, want 3", res.CreatedArtifacts)
	}
	var boundTypes []string
	for _, a := range res.BoundArtifacts {
		boundTypes = append(boundTypes, a.Type+" "+a.Reference)
	}
	slices.Sort(boundTypes)
	if !slices.Equal(boundTypes, []string{"docker/image nginx:1.27", "kubernetes/configMap cfg-v000"}) {
		t.Errorf("bound artifacts = %v", boundTypes)
	}
	if len(res.Manifests) != 3 {
		t.Fatalf("%d manifests in the result, want 3", len(res.Manifests))
	}
	for _, m := range res.Manifests {
		if md, _ := m["metadata"].(map[string]any); md["managedFields"] != nil || md["uid"] == nil {
			t.Errorf("result manifest metadata %v: want live object without managedFields", md)
		}
	}
	js, _ := json.Marshal(res)
	for _, k := range []string{`"manifestNamesByNamespace":{"` + e.ns + `":[`, `"createdArtifacts":[`, `"boundArtifacts":[`, `"manifests":[`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("result JSON lacks %s: %s", k, js)
		}
	}

	// Cluster state: annotations, labels, names, binding.
	cm, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "cfg-v000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, "configMap annotations", cm.Annotations, map[string]string{
		AnnotationMonikerApplication: "shop", AnnotationMonikerCluster: "configMap cfg", AnnotationMonikerSequence: "0",
		AnnotationArtifactType: "kubernetes/configMap", AnnotationArtifactName: "cfg", AnnotationArtifactLocation: e.ns, AnnotationArtifactVersion: "v000",
	})
	checkMap(t, "configMap labels", cm.Labels, map[string]string{LabelManagedBy: "spinnaker", LabelName: "shop", LabelMonikerSequence: "0"})
	dep, err := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, "deployment annotations", dep.Annotations, map[string]string{
		AnnotationMonikerApplication: "shop", AnnotationMonikerCluster: "deployment web", AnnotationArtifactType: "kubernetes/deployment",
		AnnotationArtifactName: "web", AnnotationArtifactVersion: ""})
	if _, ok := dep.Annotations[AnnotationMonikerSequence]; ok {
		t.Error("unversioned deployment has a moniker sequence")
	}
	checkMap(t, "deployment labels", dep.Labels, map[string]string{LabelManagedBy: "spinnaker", LabelName: "shop"})
	checkMap(t, "pod template labels", dep.Spec.Template.Labels, map[string]string{"app": "web", LabelManagedBy: "spinnaker", LabelName: "shop"})
	checkMap(t, "pod template annotations", dep.Spec.Template.Annotations, map[string]string{AnnotationMonikerApplication: "shop", AnnotationArtifactName: "web"})
	if got := dep.Spec.Template.Spec.Volumes[0].ConfigMap.Name; got != "cfg-v000" {
		t.Errorf("deployment mounts configMap %q, want the bound cfg-v000", got)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != "nginx:1.27" {
		t.Errorf("image %q, want the bound nginx:1.27", got)
	}
	svc, err := e.kube.CoreV1().Services(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, "service labels", svc.Labels, map[string]string{LabelManagedBy: "spinnaker"})

	// Second deploy: the next version, bound into the deployment; v000 stays.
	res = e.deploy(nil, configMap("cfg", map[string]any{"a": "2"}, nil), deployment("web", "nginx:1.27", 1, "cfg"))
	wantNames(t, res, e.ns, "configMap cfg-v001", "deployment web")
	cm1, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "cfg-v001", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm1.Data["a"] != "2" || cm1.Annotations[AnnotationMonikerSequence] != "1" || cm1.Labels[LabelMonikerSequence] != "1" {
		t.Errorf("cfg-v001: data %v annotations %v labels %v", cm1.Data, cm1.Annotations, cm1.Labels)
	}
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "cfg-v000", metav1.GetOptions{}); err != nil {
		t.Errorf("cfg-v000 after the second deploy: %v", err)
	}
	dep, _ = e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
	if got := dep.Spec.Template.Spec.Volumes[0].ConfigMap.Name; got != "cfg-v001" {
		t.Errorf("deployment mounts %q after the second deploy, want cfg-v001", got)
	}

	// Secrets are versioned too, and their values never appear in the result.
	secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "creds"},
		"stringData": map[string]any{"password": "hunter2"}}
	res = e.deploy(nil, secret)
	wantNames(t, res, e.ns, "secret creds-v000")
	if js, _ := json.Marshal(res); strings.Contains(string(js), "hunter2") || strings.Contains(string(js), "aHVudGVyMg") {
		t.Errorf("secret value in the result: %s", js)
	}
	sec, err := e.kube.CoreV1().Secrets(e.ns).Get(e.ctx, "creds-v000", metav1.GetOptions{})
	if err != nil || string(sec.Data["password"]) != "hunter2" {
		t.Errorf("secret in the cluster: %v, %v", sec.Data, err)
	}

	// versioned: false in the description, and "false" in the annotation.
	res = e.deploy(map[string]any{"versioned": false}, configMap("plain", nil, nil))
	wantNames(t, res, e.ns, "configMap plain")
	res = e.deploy(nil, configMap("plain2", nil, map[string]any{AnnotationVersioned: "false"}))
	wantNames(t, res, e.ns, "configMap plain2")
	// strategy.spinnaker.io/versioned: "true" versions any kind.
	svcV := service("edge", map[string]any{"app": "edge"})
	svcV["metadata"].(map[string]any)["annotations"] = map[string]any{AnnotationVersioned: "true"}
	res = e.deploy(nil, svcV)
	wantNames(t, res, e.ns, "service edge-v000")

	// A required artifact that nothing uses fails before anything is written.
	_, err = e.try(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"requiredArtifacts": []any{map[string]any{"type": "docker/image", "name": "redis", "reference": "redis:7"}},
		"manifests":         []any{configMap("unbound", nil, nil)}})
	wantValidation(t, err, "requiredArtifacts", "could not be bound: docker/image redis")
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "unbound-v000", metav1.GetOptions{}); err == nil {
		t.Error("a failed deploy created its configMap")
	}

	// Without namespaceOverride or metadata.namespace: Options.DefaultNamespace.
	d := e.withOptions(Options{DefaultNamespace: e.ns})
	res = d.run(OpDeployManifest, map[string]any{"moniker": map[string]any{"app": "shop", "stack": "prod", "detail": "eu"},
		"manifests": []any{configMap("defaulted", nil, nil)}})
	wantNames(t, res, e.ns, "configMap defaulted-v000")
	cm, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "defaulted-v000", metav1.GetOptions{})
	checkMap(t, "moniker annotations", cm.Annotations, map[string]string{AnnotationMonikerStack: "prod", AnnotationMonikerDetail: "eu"})
}

// managers returns "manager/operation" of an object's managedFields.
func managers(fields []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, f := range fields {
		out = append(out, f.Manager+"/"+string(f.Operation))
	}
	return out
}

func testApplyModes(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{}) // server-side by default
	noVersion := map[string]any{"versioned": false}

	e.deploy(noVersion, configMap("ssa", map[string]any{"a": "1"}, nil))
	cm, _ := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "ssa", metav1.GetOptions{})
	if !slices.Contains(managers(cm.ManagedFields), "kubesvc/Apply") || cm.Annotations[AnnotationLastApplied] != "" {
		t.Errorf("server-side apply: managers %v, last-applied %q", managers(cm.ManagedFields), cm.Annotations[AnnotationLastApplied])
	}
	// Fields dropped from the manifest are dropped from the object.
	e.deploy(noVersion, configMap("ssa", map[string]any{"b": "2"}, nil))
	cm, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "ssa", metav1.GetOptions{})
	if len(cm.Data) != 1 || cm.Data["b"] != "2" {
		t.Errorf("after the second server-side apply data = %v, want only b", cm.Data)
	}

	csa := e.withOptions(Options{ServerSideApply: SSANever, FieldManager: "spin"})
	csa.deploy(noVersion, configMap("csa", map[string]any{"keep": "1", "drop": "1"}, nil))
	cm, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "csa", metav1.GetOptions{})
	if !slices.Contains(managers(cm.ManagedFields), "spin/Update") || !strings.Contains(cm.Annotations[AnnotationLastApplied], `"drop":"1"`) {
		t.Fatalf("client-side apply: managers %v, last-applied %q", managers(cm.ManagedFields), cm.Annotations[AnnotationLastApplied])
	}
	// Someone else adds a key; the three-way merge keeps it and drops ours.
	cm.Data["external"] = "x"
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Update(e.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	csa.deploy(noVersion, configMap("csa", map[string]any{"keep": "2"}, nil))
	cm, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "csa", metav1.GetOptions{})
	if len(cm.Data) != 2 || cm.Data["keep"] != "2" || cm.Data["external"] != "x" {
		t.Errorf("after client-side re-apply data = %v, want keep=2 and external=x", cm.Data)
	}
	// Typed three-way strategic merge on a Deployment: containers merge by name.
	csa.deploy(nil, deployment("csa-web", "nginx:1", 1, ""))
	csa.deploy(nil, deployment("csa-web", "nginx:2", 2, ""))
	dep, _ := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "csa-web", metav1.GetOptions{})
	if *dep.Spec.Replicas != 2 || dep.Spec.Template.Spec.Containers[0].Image != "nginx:2" || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Errorf("client-side re-applied deployment: replicas %d containers %+v", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers)
	}

	// The default: server-side unless the object asks for client-side
	// apply; a kind's own policy decides first (an empty one is none).
	e.deploy(noVersion, configMap("preferred-csa", nil, map[string]any{AnnotationServerSideApply: "false"}),
		configMap("preferred-armory-csa", nil, map[string]any{AnnotationArmoryServerSideApply: "disabled"}))
	pkNone := e.withOptions(Options{SSAKinds: map[string]SSAMode{"configmap": ""}})
	pkNone.deploy(noVersion, configMap("preferred-kind-unset", nil, nil))
	pkAl := e.withOptions(Options{SSAKinds: map[string]SSAMode{"configmap": SSAAllowed}})
	pkAl.deploy(noVersion, configMap("preferred-kind-allowed", nil, nil))
	for name, want := range map[string]string{"preferred-csa": "kubesvc/Update", "preferred-armory-csa": "kubesvc/Update",
		"preferred-kind-unset": "kubesvc/Apply", "preferred-kind-allowed": "kubesvc/Update"} {
		cm, _ := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if !slices.Contains(managers(cm.ManagedFields), want) {
			t.Errorf("default policy: %s: managers %v, want %s", name, managers(cm.ManagedFields), want)
		}
	}

	// allowed: client-side unless the object asks for server-side apply.
	al := e.withOptions(Options{ServerSideApply: SSAAllowed})
	al.deploy(noVersion, configMap("allowed-csa", nil, nil),
		configMap("allowed-ssa", nil, map[string]any{AnnotationServerSideApply: "true"}),
		configMap("allowed-armory", nil, map[string]any{AnnotationArmoryServerSideApply: "force-conflicts"}),
		configMap("allowed-armory-enabled", nil, map[string]any{AnnotationArmoryServerSideApply: "enabled"}))
	for name, want := range map[string]string{"allowed-csa": "kubesvc/Update", "allowed-ssa": "kubesvc/Apply", "allowed-armory": "kubesvc/Apply", "allowed-armory-enabled": "kubesvc/Apply"} {
		cm, _ := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if !slices.Contains(managers(cm.ManagedFields), want) {
			t.Errorf("%s: managers %v, want %s", name, managers(cm.ManagedFields), want)
		}
	}
	// always ignores an annotation asking for client-side apply, and a kind's own policy.
	e.withOptions(Options{ServerSideApply: SSAAlways}).deploy(noVersion, configMap("always", nil, map[string]any{AnnotationServerSideApply: "false"}))
	cm, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "always", metav1.GetOptions{})
	if !slices.Contains(managers(cm.ManagedFields), "kubesvc/Apply") {
		t.Errorf("always: managers %v", managers(cm.ManagedFields))
	}
	global := e.withOptions(Options{ServerSideApply: SSAAlways, SSAKinds: map[string]SSAMode{"configmap": SSANever}})
	global.deploy(noVersion, configMap("global-always", nil, nil))
	cm, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "global-always", metav1.GetOptions{})
	if !slices.Contains(managers(cm.ManagedFields), "kubesvc/Apply") {
		t.Errorf("global always, per-kind never: managers %v", managers(cm.ManagedFields))
	}
	// Under allowed a kind's always or never decides, over annotations.
	pk := e.withOptions(Options{ServerSideApply: SSAAllowed, SSAKinds: map[string]SSAMode{"configmap": SSAAlways}})
	pk.deploy(noVersion, configMap("per-kind", nil, nil))
	cm, _ = e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "per-kind", metav1.GetOptions{})
	if !slices.Contains(managers(cm.ManagedFields), "kubesvc/Apply") {
		t.Errorf("allowed, per-kind always: managers %v", managers(cm.ManagedFields))
	}
	pkAllowed := e.withOptions(Options{ServerSideApply: SSAAllowed, SSAKinds: map[string]SSAMode{"configmap": SSAAllowed}})
	pkAllowed.deploy(noVersion, configMap("per-kind-allowed", nil, nil), configMap("per-kind-allowed-ssa", nil, map[string]any{AnnotationServerSideApply: "true"}))
	for name, want := range map[string]string{"per-kind-allowed": "kubesvc/Update", "per-kind-allowed-ssa": "kubesvc/Apply"} {
		cm, _ := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if !slices.Contains(managers(cm.ManagedFields), want) {
			t.Errorf("allowed, per-kind allowed: %s: managers %v, want %s", name, managers(cm.ManagedFields), want)
		}
	}
	if _, err := New(c.RESTConfig(), Options{ServerSideApply: "sometimes"}); err == nil {
		t.Error("New accepted server-side apply mode sometimes")
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
