package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// manifestRead is what the test reads of GET /manifests/... (Clouddriver's
// manifest, as Orca's WaitForManifestStable reads it).
type manifestRead struct {
	Name, Location string
	Moniker        struct{ App, Cluster string }
	Status         map[string]struct {
		State   bool
		Message string
	}
	Artifacts []struct{ Type, Reference string }
	Events    []struct{ Reason string }
}

// manifest polls GET /manifests/main/{location}/{name} until cond holds.
func (e *opsEnv) manifest(location, name, query, what string, cond func(m manifestRead) bool) manifestRead {
	e.t.Helper()
	var m manifestRead
	e.eventually(what, func() error {
		code, body, err := getJSON(e.cp.http, "/manifests/main/"+location+"/"+url.PathEscape(name)+query, nil, &m)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /manifests/main/%s/%s: %d %s %v", location, name, code, body, err)
		}
		if !cond(m) {
			return fmt.Errorf("%+v", m)
		}
		return nil
	})
	return m
}

// Clouddriver's manifest reads answer what Orca waits on after a deploy:
// names from the deploy's result round-trip, and the status follows the
// cluster's controllers (a real kube-controller-manager): waiting for
// availability (no kubelet runs Pods here), paused, stable once scaled
// to zero; another past its progress deadline. A versioned ReplicaSet's
// cluster and its dynamic targets are found by moniker.
func TestManifestStatusFollowsTheCluster(t *testing.T) {
	t.Parallel()
	e := startOpsEnv(t)
	tk := e.ok("deployManifest", deployOf(deployment("web", "registry.example/web:1", "")))
	names := tk.ResultObjects[0].ManifestNamesByNamespace["default"]
	if !slices.Contains(names, "deployment web") {
		t.Fatalf("deploy result names %v", names)
	}
	m := e.manifest("default", "deployment web", "?includeEvents=false", "waiting for availability", func(m manifestRead) bool {
		return !m.Status["stable"].State && m.Status["stable"].Message == "Waiting for all replicas to be available"
	})
	if m.Name != "deployment web" || m.Location != "default" || m.Moniker.App != "shop" || m.Moniker.Cluster != "deployment web" {
		t.Errorf("identity and moniker: %+v", m)
	}
	if len(m.Artifacts) != 1 || m.Artifacts[0].Type != "docker/image" || m.Artifacts[0].Reference != "registry.example/web:1" {
		t.Errorf("artifacts %+v", m.Artifacts)
	}
	e.ok("pauseRolloutManifest", `{"account": "main", "manifestName": "deployment web", "location": "default"}`)
	e.manifest("default", "deploy web", "", "paused", func(m manifestRead) bool { return m.Status["paused"].State })
	e.ok("resumeRolloutManifest", `{"account": "main", "manifestName": "deployment web", "location": "default"}`)
	e.ok("scaleManifest", `{"account": "main", "manifestName": "deployment web", "location": "default", "replicas": 0}`)
	e.manifest("default", "deployment web", "", "stable at 0 replicas", func(m manifestRead) bool {
		return m.Status["stable"].State && !m.Status["failed"].State && !m.Status["paused"].State
	})

	// A Deployment past its progress deadline has failed (the controller
	// keeps that condition over a later pause, so this is one of its own).
	slow := strings.Replace(deployment("slow", "registry.example/web:1", ""), `"replicas": 1,`, `"replicas": 1, "progressDeadlineSeconds": 1,`, 1)
	e.ok("deployManifest", deployOf(slow))
	e.manifest("default", "deployment slow", "", "progress deadline exceeded, with the controller's events", func(m manifestRead) bool {
		return m.Status["failed"].State && m.Status["failed"].Message == "Deployment exceeded its progress deadline" &&
			slices.ContainsFunc(m.Events, func(ev struct{ Reason string }) bool { return ev.Reason == "ScalingReplicaSet" })
	})

	// Two versions of a ReplicaSet: a cluster of the application.
	rs := func(image string) string {
		return fmt.Sprintf(`{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "api", "namespace": "default"},
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
   "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": %q}]}}}}`, image)
	}
	e.ok("deployManifest", deployOf(rs("registry.example/api:1")))
	tk = e.ok("deployManifest", deployOf(rs("registry.example/api:2")))
	if names := tk.ResultObjects[0].ManifestNamesByNamespace["default"]; !slices.Contains(names, "replicaSet api-v001") {
		t.Fatalf("second deploy's names %v", names)
	}
	e.manifest("default", "replicaSet api-v001", "?includeEvents=false", "a ReplicaSet waiting for its Pod", func(m manifestRead) bool {
		return !m.Status["stable"].State && m.Status["stable"].Message == "Waiting for all replicas to be ready" && !m.Status["available"].State
	})
	for path, want := range map[string]string{
		"/manifests/main/default/replicaSet/cluster/shop/replicaSet%20api":                `[{"kind":"replicaSet","namespace":"default","name":"api-v000"},{"kind":"replicaSet","namespace":"default","name":"api-v001"}]`,
		"/manifests/main/default/replicaSet/cluster/shop/replicaSet%20api/dynamic/newest": `{"kind":"replicaSet","namespace":"default","name":"api-v001"}`,
		"/manifests/main/default/replicaSet/cluster/shop/replicaSet%20api/dynamic/oldest": `{"kind":"replicaSet","namespace":"default","name":"api-v000"}`,
	} {
		code, body := send(t, "GET", e.cp.http+path, "")
		if code != http.StatusOK || strings.TrimSpace(body) != want {
			t.Errorf("GET %s: %d %s, want %s", path, code, body, want)
		}
	}
}

// Orca's Run Job stage: the job named by the runJob result's
// deployedNamesByLocation is polled at /applications/{app}/jobs/... until
// Succeeded or Failed. The real job controller fails this one at its
// deadline (no kubelet runs its Pod); its Pod is listed meanwhile.
func TestJobStatusFollowsTheCluster(t *testing.T) {
	t.Parallel()
	e := startOpsEnv(t)
	tk := e.ok("runJob", `{"account": "main", "application": "shop", "namespace": "default", "manifest": {"apiVersion": "batch/v1", "kind": "Job",
  "metadata": {"name": "late"}, "spec": {"activeDeadlineSeconds": 3, "template": {"spec": {"restartPolicy": "Never",
   "containers": [{"name": "m", "image": "busybox", "command": ["true"]}]}}}}}`)
	names := tk.ResultObjects[0].DeployedNamesByLocation["default"]
	if len(names) != 1 || names[0] != "job late" {
		t.Fatalf("runJob deployedNamesByLocation %v", tk.ResultObjects[0].DeployedNamesByLocation)
	}
	path := "/applications/shop/jobs/main/default/" + url.PathEscape(names[0])
	var st struct {
		Name, Account, Location, Provider, JobState, Message, Reason, MostRecentPodName string
		CreatedTime                                                                     int64
		CompletionDetails                                                               struct{ Reason string }
		Pods                                                                            []struct {
			Name   string
			Status struct{ Phase string }
		}
	}
	get := func() error {
		code, body, err := getJSON(e.cp.http, path, nil, &st)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s %v", path, code, body, err)
		}
		return nil
	}
	e.eventually("the job running with its Pod", func() error {
		if err := get(); err != nil {
			return err
		}
		if st.JobState != "Running" || len(st.Pods) != 1 || st.MostRecentPodName != st.Pods[0].Name || st.Pods[0].Status.Phase != "Pending" {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if st.Name != "late" || st.Account != "main" || st.Location != "default" || st.Provider != "kubernetes" || st.CreatedTime == 0 {
		t.Errorf("job status identity: %+v", st)
	}
	e.eventually("the job failed at its deadline", func() error {
		if err := get(); err != nil {
			return err
		}
		if st.JobState != "Failed" || st.Reason != "DeadlineExceeded" || st.CompletionDetails.Reason != "DeadlineExceeded" || st.Message == "" {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	e.manifest("default", "job late", "?includeEvents=false", "the job's manifest failed", func(m manifestRead) bool {
		return m.Status["failed"].State && m.Status["failed"].Message == st.Message
	})
}

// A property file is read from the Pod's log through the Kubernetes API
// proxy, from any replica: the request reaches the API server through the
// replica holding the agent and the agent (no kubelet runs here, so the API
// server answers a 204 for the Pod without a node: no properties). With the
// proxy off, the answer says so; a Pod that does not exist is a 404.
func TestPropertyFileThroughTheProxy(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "property-file"})
	cs, _ := clients(t, cluster)
	db := filepath.Join(t.TempDir(), "cluster.db")
	start := func(id string, proxy bool) *controlPlane {
		addr := freeAddr(t)
		return startControlPlane(t, cpOptions{dbPath: db, id: id, proxy: proxy, httpAddr: addr, baseURL: "http://" + addr})
	}
	holder, entry, off := start("cp-holder", true), start("cp-entry", true), start("cp-off", false)
	startAgentWith(t, "agent-logs", "zone-test", holder.grpc, relaying(nil), agent.Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"Pod"}})
	holder.watching(t, "main")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job-pod", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}
	if _, err := cs.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	path := "/applications/shop/kubernetes/pods/main/default/job-pod/main"
	eventually(t, wait, func() string {
		code, body := send(t, "GET", entry.http+path, "")
		var props map[string]any
		if code != http.StatusOK || json.Unmarshal([]byte(body), &props) != nil || len(props) != 0 {
			return fmt.Sprintf("through the entry replica: %d %s, want {} (the API server has no log: 204)", code, body)
		}
		return ""
	})
	// Deck's console of the Pod, the same way: an empty log.
	if code, body := send(t, "GET", entry.http+"/instances/main/default/pod%20job-pod/console?provider=kubernetes", ""); code != http.StatusOK ||
		strings.TrimSpace(body) != `{"output":[{"name":"main","output":""}]}` {
		t.Errorf("console through the entry replica: %d %s", code, body)
	}
	code, body := send(t, "GET", off.http+path, "")
	if code != http.StatusNotFound || !strings.Contains(body, "kubesvc.proxy.enabled") {
		t.Errorf("with the proxy off: %d %s", code, body)
	}
	code, body = send(t, "GET", entry.http+"/applications/shop/kubernetes/pods/main/default/no-such-pod/main", "")
	if code != http.StatusNotFound || !strings.Contains(body, `pods \"no-such-pod\" not found`) {
		t.Errorf("a Pod that does not exist: %d %s", code, body)
	}
}
