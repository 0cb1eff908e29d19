package ops

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// Each deploy of a versioned object gets a version of its own: deploys of
// the same artifact at once do not pick the same one (the second would
// overwrite the first), and a manifest keeping an older version
// annotation does not make a deploy reuse an existing name.
func testVersionsNeverOverwrite(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	const n = 6
	var wg sync.WaitGroup
	names := make([]string, n)
	for i := range n {
		wg.Go(func() {
			res, err := e.try(OpDeployManifest, map[string]any{"account": "test", "moniker": map[string]any{"app": "shop"},
				"namespaceOverride": e.ns, "manifests": []any{configMap("cfg", map[string]any{"who": fmt.Sprint(i)}, nil)}})
			if err != nil {
				t.Errorf("deploy %d: %v", i, err)
				return
			}
			if got := res.ManifestNamesByNamespace[e.ns]; len(got) == 1 {
				names[i] = got[0]
			}
		})
	}
	wg.Wait()
	slices.Sort(names)
	if got := slices.Compact(slices.Clone(names)); len(got) != n {
		t.Errorf("%d concurrent deploys reported %v: want %d different versions", n, names, n)
	}
	cms, err := e.kube.CoreV1().ConfigMaps(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=spinnaker"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != n {
		t.Errorf("%d deploys, %d ConfigMaps", n, len(cms.Items))
	}

	// An old version annotation carried along: still a new name each time.
	for i := range 2 {
		res := e.deploy(nil, configMap("stale", map[string]any{"round": fmt.Sprint(i)}, map[string]any{"artifact.spinnaker.io/version": "v000"}))
		want := fmt.Sprintf("configMap stale-v%03d", i)
		if got := res.ManifestNamesByNamespace[e.ns]; len(got) != 1 || got[0] != want {
			t.Errorf("deploy %d with a v000 annotation: %v, want %s", i, got, want)
		}
	}
	// A name too long for its version suffix is refused before anything
	// of the deploy is written.
	_, err = e.try(OpDeployManifest, map[string]any{"account": "test", "moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests": []any{configMap("first", nil, nil), configMap(strings.Repeat("n", 250), nil, nil)}})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.HasSuffix(ve.Field, "metadata.name") {
		t.Errorf("deploy of a 250-character versioned name: %v, want a ValidationError naming metadata.name", err)
	}
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "first-v000", metav1.GetOptions{}); err == nil {
		t.Error("the deploy refused for its second manifest wrote the first")
	}

	res := e.deploy(nil, configMap("stale", map[string]any{"round": "2"}, map[string]any{"artifact.spinnaker.io/version": "v000"}))
	if got := res.ManifestNamesByNamespace[e.ns]; len(got) != 1 || got[0] != "configMap stale-v002" {
		t.Errorf("third deploy with a v000 annotation: %v, want configMap stale-v002 (v001 kept)", got)
	}

	// cleanupArtifacts with what the last deploy returned: the versions
	// beyond max-version-history go, the newest stay, others are left.
	hist := map[string]any{"strategy.spinnaker.io/max-version-history": "2"}
	// Named like a version, but not one of the artifact's: never deleted.
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hist-v000"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last Result
	for i := range 4 {
		last = e.deploy(nil, configMap("hist", map[string]any{"round": fmt.Sprint(i)}, hist))
	}
	res, err = e.try(OpCleanupArtifacts, map[string]any{"account": "test", "manifests": last.Manifests})
	if err != nil {
		t.Fatal(err)
	}
	// The hand-made hist-v000 took version 0's name: the deploys made
	// hist-v001 to hist-v004.
	if got := res.ManifestNamesByNamespace[e.ns]; !slices.Equal(got, []string{"configMap hist-v001", "configMap hist-v002"}) {
		t.Errorf("cleanupArtifacts deleted %v, want hist-v001 and hist-v002", got)
	}
	for name, want := range map[string]bool{"hist-v000": true, "hist-v001": false, "hist-v002": false, "hist-v003": true, "hist-v004": true, "cfg-v000": true, "stale-v002": true} {
		_, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if exists := err == nil; exists != want {
			t.Errorf("after cleanupArtifacts %s exists: %v, want %v", name, exists, want)
		}
	}
}

// A deploy of the same content as an existing version reuses it, as
// Clouddriver's ResourceVersioner does: a pipeline run that changes
// nothing rolls nothing. Metadata does not count; a Secret is never
// matched by a digest of its values, only by a last-applied configuration
// (which Clouddriver's client-side applies leave).
func testVersionsReuseIdenticalContent(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	names := func(res Result) []string { return res.ManifestNamesByNamespace[e.ns] }
	cm := func(data string, ann map[string]any) map[string]any {
		return configMap("same", map[string]any{"k": data}, ann)
	}
	for i, want := range []string{"configMap same-v000", "configMap same-v000"} {
		if got := names(e.deploy(nil, cm("one", map[string]any{"note": fmt.Sprint(i)}))); !slices.Equal(got, []string{want}) {
			t.Errorf("deploy %d of the same data: %v, want %s", i, got, want)
		}
	}
	if got := names(e.deploy(nil, cm("two", nil))); !slices.Equal(got, []string{"configMap same-v001"}) {
		t.Errorf("other data: %v, want a new version", got)
	}
	if got := names(e.deploy(nil, cm("one", nil))); !slices.Equal(got, []string{"configMap same-v000"}) {
		t.Errorf("the first data again: %v, want its version, v000", got)
	}
	got, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "same-v000", metav1.GetOptions{})
	if err != nil || !strings.HasPrefix(got.Annotations[AnnotationContentDigest], "sha256:") || got.Annotations["note"] != "" {
		t.Errorf("same-v000: %v %v (want the digest annotation, and the last deploy's metadata)", got.GetAnnotations(), err)
	}

	// A Deployment mounting the reused version is unchanged: no rollout.
	first := e.deploy(nil, cm("three", nil), deployment("web", "nginx:1", 1, "same"))
	again := e.deploy(nil, cm("three", nil), deployment("web", "nginx:1", 1, "same"))
	if !slices.Equal(names(first), names(again)) {
		t.Errorf("the same deploy twice: %v then %v", names(first), names(again))
	}
	if d, err := e.kube.AppsV1().Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{}); err != nil || d.Generation != 1 {
		t.Errorf("deployment web: generation %d (%v), want 1: nothing changed", d.GetGeneration(), err)
	}

	// Secrets are compared in place, in the agent: the same values (as
	// stringData or base64 data) reuse the version, and no digest of them
	// is written.
	secret := func(values map[string]any) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "pw"}, "stringData": values}
	}
	for i, c := range []struct {
		m    map[string]any
		want string
	}{
		{secret(map[string]any{"p": "hunter2"}), "secret pw-v000"},
		{secret(map[string]any{"p": "hunter2"}), "secret pw-v000"},
		{map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "pw"}, "data": map[string]any{"p": "aHVudGVyMg=="}}, "secret pw-v000"},
		{secret(map[string]any{"p": "hunter3"}), "secret pw-v001"},
		{map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "pw"}, "type": "example.com/other", "stringData": map[string]any{"p": "hunter2"}}, "secret pw-v002"},
	} {
		if got := names(e.deploy(nil, c.m)); !slices.Equal(got, []string{c.want}) {
			t.Errorf("secret deploy %d: %v, want %s", i, got, c.want)
		}
	}
	for _, name := range []string{"pw-v000", "pw-v001"} {
		if s, err := e.kube.CoreV1().Secrets(e.ns).Get(e.ctx, name, metav1.GetOptions{}); err != nil || s.Annotations[AnnotationContentDigest] != "" {
			t.Errorf("secret %s: annotations %v (%v), want no digest of its values", name, s.GetAnnotations(), err)
		}
	}

	// Orca's cleanup after a deploy that reused an older version keeps it,
	// and counts it among the versions kept.
	hist := map[string]any{"strategy.spinnaker.io/max-version-history": "2"}
	for _, data := range []string{"a", "b", "c"} {
		e.deploy(nil, configMap("h", map[string]any{"k": data}, hist))
	}
	last := e.deploy(nil, configMap("h", map[string]any{"k": "a"}, hist))
	if got := names(last); !slices.Equal(got, []string{"configMap h-v000"}) {
		t.Fatalf("the first content again: %v, want h-v000", got)
	}
	res, err := e.try(OpCleanupArtifacts, map[string]any{"account": "test", "manifests": last.Manifests})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res); !slices.Equal(got, []string{"configMap h-v001"}) {
		t.Errorf("cleanup after the reuse deleted %v, want h-v001 only (h-v000 in use, h-v002 the newest other)", got)
	}

	// ReplicaSets take traffic: never reused (their template gets the
	// Services' labels after the digest; an old version's Pods may lack
	// them).
	rs := map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": map[string]any{"name": "api"},
		"spec": map[string]any{"replicas": 0, "selector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "api"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "nginx"}}}}}}
	for i := range 2 {
		if got, want := names(e.deploy(nil, rs)), fmt.Sprintf("replicaSet api-v%03d", i); !slices.Equal(got, []string{want}) {
			t.Errorf("replicaSet deploy %d: %v, want %s", i, got, want)
		}
	}

	// Reused with strategy.spinnaker.io/recreate: not recreated (the same
	// object, still mounted), and a version being deleted is not reused.
	rec := func() map[string]any {
		return configMap("rec", map[string]any{"k": "v"}, map[string]any{"strategy.spinnaker.io/recreate": "true"})
	}
	e.deploy(nil, rec())
	before, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "rec-v000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(e.deploy(nil, rec())); !slices.Equal(got, []string{"configMap rec-v000"}) {
		t.Errorf("recreate, same content: %v, want rec-v000", got)
	}
	if after, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, "rec-v000", metav1.GetOptions{}); err != nil || after.UID != before.UID {
		t.Errorf("recreate of a reused version: uid %s then %v (%v), want the same object", before.UID, after.GetUID(), err)
	}
	before.Finalizers = []string{"example.com/hold"}
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Update(e.ctx, before, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.kube.CoreV1().ConfigMaps(e.ns).Delete(e.ctx, "rec-v000", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.kube.CoreV1().ConfigMaps(e.ns).Patch(e.ctx, "rec-v000", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	})
	if got := names(e.deploy(nil, rec())); !slices.Equal(got, []string{"configMap rec-v001"}) {
		t.Errorf("the same content while its version is being deleted: %v, want rec-v001", got)
	}

	// Deployed by Clouddriver (client-side): its last-applied configuration
	// matches.
	legacy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "legacy-v004", Namespace: e.ns, Annotations: map[string]string{
		"artifact.spinnaker.io/name": "legacy", "artifact.spinnaker.io/type": "kubernetes/configMap", "artifact.spinnaker.io/version": "v004",
		AnnotationLastApplied: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"legacy-v004"},"data":{"k":"old"}}`,
	}}, Data: map[string]string{"k": "old"}}
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Create(e.ctx, legacy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := names(e.deploy(nil, configMap("legacy", map[string]any{"k": "old"}, nil))); !slices.Equal(got, []string{"configMap legacy-v004"}) {
		t.Errorf("Clouddriver's version with the same content: %v, want legacy-v004", got)
	}
}

// An object the kind's schema cannot hold is answered by server-side
// apply with a 500 that is no server fault: it fails at once (no retries),
// its Go-syntax value quoted plainly and bounded.
func testTypedPatchErrorNotRetried(t *testing.T, c *testenv.Cluster) {
	r := DefaultRetries()
	r.BackOff = 2 * time.Second
	e := newClusterEnv(t, c, Options{Retries: &r})
	cm := configMap("typed", map[string]any{"a": "b"}, nil)
	cm["status"] = map[string]any{"nested": map[string]any{"deep": strings.Repeat("x", 5000)}}
	start := time.Now()
	_, err := e.try(OpDeployManifest, map[string]any{"account": "test", "moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests": []any{cm}})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "failed to create typed patch object") {
		t.Fatalf("deploy of a ConfigMap with a status: %v, want the API server's typed patch error", err)
	}
	if strings.Contains(err.Error(), "giving up after") || took > r.BackOff {
		t.Errorf("retried (%s): %v", took, err)
	}
	if len(err.Error()) > 2*maxTypedPatchMessage || strings.Contains(err.Error(), "valueUnstructured") {
		t.Errorf("message of %d bytes, Go syntax kept: %.300s", len(err.Error()), err)
	}

	// A value the typed patch takes but the kind's Go type cannot (a
	// quantity that is no quantity) is the same kind of 500: "failed to
	// convert new object ... to proper version".
	d := deployment("conv", "nginx", 1, "")
	d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["resources"] =
		map[string]any{"limits": map[string]any{"cpu": "lots"}}
	start = time.Now()
	_, err = e.try(OpDeployManifest, map[string]any{"account": "test", "moniker": map[string]any{"app": "shop"}, "namespaceOverride": e.ns,
		"manifests": []any{d}})
	took = time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "failed to convert new object") {
		t.Fatalf("deploy of a Deployment with a malformed quantity: %v, want the API server's conversion error", err)
	}
	if strings.Contains(err.Error(), "giving up after") || took > r.BackOff {
		t.Errorf("retried (%s): %v", took, err)
	}
}
