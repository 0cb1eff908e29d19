package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// replicaSetManifest is a ReplicaSet of two pods (they stay Pending: the
// test cluster has no nodes, but the controller creates them).
func replicaSetManifest(name string) string {
	return fmt.Sprintf(`{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": %q, "namespace": "default"},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": %q}},
   "template": {"metadata": {"labels": {"app": %q}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}`, name, name, name)
}

// enableManifest and disableManifest through the control plane move a
// workload's pods in and out of its Services (traffic.spinnaker.io/load-balancers).
func TestOpsTrafficThroughTheControlPlane(t *testing.T) {
	t.Parallel()
	e := startOpsEnv(t)
	svc := `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front", "namespace": "default"},
  "spec": {"selector": {"lb": "front"}, "ports": [{"port": 80}]}}`
	e.ok("deployManifest", `{"account": "main", "moniker": {"app": "shop"}, "services": ["service front"], "manifests": [`+svc+`,`+replicaSetManifest("fe")+`]}`)

	template := func() map[string]string {
		rs, err := e.cs.AppsV1().ReplicaSets("default").Get(context.Background(), "fe-v000", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rs.Annotations["traffic.spinnaker.io/load-balancers"]; got != `["service front"]` {
			t.Errorf("load-balancers annotation %q", got)
		}
		return rs.Spec.Template.Labels
	}
	pods := func(inService bool) {
		t.Helper()
		e.eventually(fmt.Sprintf("pods of fe-v000 with lb=front: %v", inService), func() error {
			list, err := e.cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=fe"})
			if err != nil {
				return err
			}
			if len(list.Items) != 2 {
				return fmt.Errorf("%d pods", len(list.Items))
			}
			for _, p := range list.Items {
				if (p.Labels["lb"] == "front") != inService {
					return fmt.Errorf("pod %s labels %v", p.Name, p.Labels)
				}
			}
			return nil
		})
	}
	if template()["lb"] != "front" {
		t.Fatalf("deployed with traffic: template labels %v", template())
	}
	pods(true)

	tk := e.ok("disableManifest", `{"account": "main", "manifestName": "replicaSet fe-v000", "location": "default"}`)
	if template()["lb"] != "" {
		t.Errorf("disabled: template labels %v", template())
	}
	pods(false)
	if n := len(tk.ResultObjects[0].ManifestNamesByNamespace["default"]); n != 3 {
		t.Errorf("disable result %v, want the replicaSet and its 2 pods", tk.ResultObjects[0].ManifestNamesByNamespace)
	}
	s, err := e.cs.CoreV1().Services("default").Get(context.Background(), "front", metav1.GetOptions{})
	if err != nil || len(s.Spec.Selector) != 1 || s.Spec.Selector["lb"] != "front" {
		t.Errorf("service selector changed: %v (err %v)", s.Spec.Selector, err)
	}
	// The cache follows: no cached pod of fe is behind the Service any more.
	present(e.t, e.cp, q("account", "main", "kind", "Pod", "labelSelector", "app=fe,lb=front"))

	e.ok("enableManifest", `{"account": "main", "manifestName": "replicaSet fe-v000", "location": "default", "loadBalancers": ["service front"]}`)
	if template()["lb"] != "front" {
		t.Errorf("enabled: template labels %v", template())
	}
	pods(true)
}

// runJob and deleteManifest (cascading, orphaning, label selectors) through
// the control plane.
func TestOpsRunJobAndDeleteThroughTheControlPlane(t *testing.T) {
	t.Parallel()
	e := startOpsEnv(t)
	ctx := context.Background()
	job := `{"account": "main", "application": "shop", "namespace": "default", "manifest": {"apiVersion": "batch/v1", "kind": "Job",
  "metadata": {"name": "migrate"}, "spec": {"template": {"spec": {"restartPolicy": "Never",
   "containers": [{"name": "m", "image": "busybox", "command": ["true"]}]}}}}}`
	tk := e.ok("runJob", job)
	if names := tk.ResultObjects[0].ManifestNamesByNamespace["default"]; len(names) != 1 || names[0] != "job migrate" {
		t.Errorf("runJob result names %v", names)
	}
	j1, err := e.cs.BatchV1().Jobs("default").Get(ctx, "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j1.Annotations["moniker.spinnaker.io/application"] != "shop" || j1.Spec.Template.Labels["app.kubernetes.io/managed-by"] != "spinnaker" {
		t.Errorf("job annotations %v, template labels %v", j1.Annotations, j1.Spec.Template.Labels)
	}
	// Running it again recreates the Job.
	e.ok("runJob", job)
	if j2, err := e.cs.BatchV1().Jobs("default").Get(ctx, "migrate", metav1.GetOptions{}); err != nil || j2.UID == j1.UID {
		t.Errorf("second runJob: uid %s then %v (err %v), want a new Job", j1.UID, j2, err)
	}

	// Cascading delete removes the ReplicaSets; cascading false orphans them.
	e.ok("deployManifest", deployOf(deployment("cascade", "nginx", ""), deployment("orphan", "nginx", "")))
	e.revisions("cascade", 1)
	orphanRS := e.revisions("orphan", 1)
	e.ok("deleteManifest", `{"account": "main", "manifestName": "deployment cascade", "location": "default", "options": {"cascading": true}}`)
	e.ok("deleteManifest", `{"account": "main", "manifestName": "deployment orphan", "location": "default", "options": {"cascading": false}}`)
	// With cascading false the API server keeps the Deployment (orphan
	// finalizer) until the garbage collector has released its ReplicaSets.
	for _, name := range []string{"cascade", "orphan"} {
		e.eventually("deployment "+name+" deleted", func() error {
			if _, err := e.cs.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("after delete: %v, want NotFound", err)
			}
			return nil
		})
	}
	e.eventually("replicaSets of the cascaded deployment deleted", func() error {
		list, err := e.cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=cascade"})
		if err != nil || len(list.Items) > 0 {
			return fmt.Errorf("%d left (err %v)", len(list.Items), err)
		}
		return nil
	})
	e.eventually("orphaned replicaSet released", func() error {
		list, err := e.cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=orphan"})
		if err != nil || len(list.Items) != len(orphanRS) {
			return fmt.Errorf("%d replicaSets (err %v), want %d", len(list.Items), err, len(orphanRS))
		}
		for _, rs := range list.Items {
			if len(rs.OwnerReferences) > 0 {
				return fmt.Errorf("%s still owned by %v", rs.Name, rs.OwnerReferences)
			}
		}
		return nil
	})

	// Label selectors over kinds, in Clouddriver's structured form and as a
	// selector string.
	cm := func(name, tier string) string {
		return fmt.Sprintf(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": %q, "namespace": "default", "labels": {"tier": %q}}}`, name, tier)
	}
	e.ok("deployManifest", `{"account": "main", "moniker": {"app": "shop"}, "versioned": false, "manifests": [`+
		strings.Join([]string{cm("a1", "a"), cm("a2", "a"), cm("b1", "b"), cm("c1", "c")}, ",")+`]}`)
	tk = e.ok("deleteManifest", `{"account": "main", "kinds": ["configMap"], "location": "default",
		"labelSelectors": {"selectors": [{"kind": "EQUALS", "key": "tier", "values": ["a"]}]}}`)
	if names := strings.Join(tk.ResultObjects[0].ManifestNamesByNamespace["default"], ","); names != "configMap a1,configMap a2" {
		t.Errorf("deleted by selector: %s", names)
	}
	e.ok("deleteManifest", `{"account": "main", "kinds": ["cm", "deployment"], "location": "default", "labelSelectors": "tier in (b)"}`)
	for name, want := range map[string]bool{"a1": false, "a2": false, "b1": false, "c1": true} {
		_, err := e.cs.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
		if exists := err == nil; exists != want {
			t.Errorf("configMap %s exists = %v, want %v (%v)", name, exists, want, err)
		}
	}
	present(e.t, e.cp, q("account", "main", "kind", "ConfigMap", "labelSelector", "tier"), "default/c1")
}
