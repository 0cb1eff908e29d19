package manifests_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// fakeKubernetes stands in for the Kubernetes API proxy, which needs an
// agent and a kubelet for a Pod's log (no kubelet runs here): it answers
// the log of each "namespace/pod/container" in chunks of 7 bytes, or a
// Kubernetes Status 404.
type fakeKubernetes struct {
	logs map[string]string
	got  []string // the paths and queries asked
}

func (f *fakeKubernetes) KubernetesGet(_ context.Context, _ *http.Request, account, path string, q url.Values, w http.ResponseWriter) {
	f.got = append(f.got, account+" "+path+"?"+q.Encode())
	parts := strings.Split(path, "/") // /api/v1/namespaces/NS/pods/POD/log
	log, ok := f.logs[parts[4]+"/"+parts[6]+"/"+q.Get("container")]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind": "Status", "status": "Failure", "message": "pods \"` + parts[6] + `\" not found", "code": 404}`))
		return
	}
	w.WriteHeader(http.StatusOK)
	for len(log) > 0 {
		n := min(7, len(log))
		_, _ = w.Write([]byte(log[:n]))
		w.(http.Flusher).Flush()
		log = log[n:]
	}
}

func TestPropertyFiles(t *testing.T) {
	kube := &fakeKubernetes{logs: map[string]string{
		"prod/broken-b/main": "starting\n  SPINNAKER_PROPERTY_IMAGE_TAG = 1.2.3\nprefix SPINNAKER_PROPERTY_Region=eu-west-1\n" +
			"SPINNAKER_PROPERTY_EMPTY=\nSPINNAKER_CONFIG_JSON={\"region\": \"us-east-1\", \"replicas\": 3}\nSPINNAKER_PROPERTY_LAST=x",
		"prod/broken-a/main": "SPINNAKER_CONFIG_JSON={not json}\n",
		"prod/chatty/main":   strings.Repeat("SPINNAKER_PROPERTY_K"+strings.Repeat("x", 1000)+"=v\n", 5000),
	}}
	e := newEnvWith(t, kube)
	e.put(t, "batch", "v1", "jobs", "Job", true, job("broken", `{"failed": 2}`))
	e.put(t, "batch", "v1", "jobs", "Job", true, job("lonely", `{}`))
	e.put(t, "", "v1", "pods", "Pod", true, pod("broken-b", "broken", "2026-01-01T00:00:10Z", `"containerStatuses": []`))
	e.put(t, "", "v1", "pods", "Pod", true, pod("broken-a", "broken", "2026-01-01T00:00:01Z", `"containerStatuses": []`))

	want := map[string]any{"image_tag": "1.2.3", "region": "us-east-1", "replicas": 3.0, "last": "x"}
	for _, path := range []string{"/applications/shop/jobs/main/prod/job%20broken/main", "/applications/shop/kubernetes/pods/main/prod/broken-b/main"} {
		code, body := e.get(t, path)
		var got map[string]any
		if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GET %s: %d %s, want %v", path, code, body, want)
		}
	}
	if kube.got[0] != "main /api/v1/namespaces/prod/pods/broken-b/log?container=main" {
		t.Errorf("the job's log read %q, want its latest Pod's", kube.got[0])
	}
	e.wantError(t, "/applications/shop/kubernetes/pods/main/prod/broken-a/main", http.StatusUnprocessableEntity, "SPINNAKER_CONFIG_JSON line is not a JSON object")
	e.wantError(t, "/applications/shop/kubernetes/pods/main/prod/gone/main", http.StatusNotFound, `pods "gone" not found`)
	e.wantError(t, "/applications/shop/kubernetes/pods/main/prod/chatty/main", http.StatusUnprocessableEntity, "its properties hold over 4194304 bytes")
	e.wantError(t, "/applications/shop/kubernetes/pods/main//broken-b/main", http.StatusBadRequest, "namespace: required")
	e.wantError(t, "/applications/shop/jobs/main/prod/job%20lonely/main", http.StatusNotFound, `job "lonely" in namespace "prod" of account "main" has no cached Pods`)
	e.wantError(t, "/applications/shop/jobs/main/prod/job%20nope/main", http.StatusNotFound, `no cached job "nope"`)
}

// Deck's console of a Pod: each container's log (init containers first),
// its last lines, bounded; one that cannot be read says why.
func TestPodConsole(t *testing.T) {
	kube := &fakeKubernetes{logs: map[string]string{
		"prod/web-1/init": "setting up\n",
		"prod/web-1/main": strings.Repeat("x", 1<<20) + "tail\n",
	}}
	e := newEnvWith(t, kube)
	e.put(t, "", "v1", "pods", "Pod", true, `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "prod"},
  "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "main"}, {"name": "side"}]}}`)
	code, body := e.get(t, "/instances/main/prod/pod%20web-1/console?provider=kubernetes")
	var got struct {
		Output []struct{ Name, Output string }
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || len(got.Output) != 3 {
		t.Fatalf("console: %d %.300s", code, body)
	}
	if o := got.Output[0]; o.Name != "init" || o.Output != "setting up\n" {
		t.Errorf("init container: %+v", o)
	}
	if o := got.Output[1]; o.Name != "main" || len(o.Output) > 1<<20+100 || !strings.HasPrefix(o.Output, "(5 earlier bytes left out)\n") || !strings.HasSuffix(o.Output, "xtail\n") {
		t.Errorf("main container: %d bytes, starting %.40q, ending %q", len(o.Output), o.Output, o.Output[max(len(o.Output)-40, 0):])
	}
	if o := got.Output[2]; o.Name != "side" || !strings.Contains(o.Output, "could not be read: 404") {
		t.Errorf("a container without a log: %+v", o)
	}
	if !strings.Contains(kube.got[0], "tailLines=2000") {
		t.Errorf("log read %q, want its last lines only", kube.got[0])
	}
	if code, body := e.get(t, "/instances/main/prod/web-1/console"); code != http.StatusOK {
		t.Errorf("a bare Pod name: %d %s", code, body)
	}
	e.wantError(t, "/instances/main/prod/pod%20gone/console", http.StatusNotFound, `no cached Pod "gone"`)
	e.wantError(t, "/instances/main/prod/deployment%20web/console", http.StatusBadRequest, `not "pod NAME"`)
	e.wantError(t, "/instances/main/prod/web-1/console?provider=aws", http.StatusBadRequest, "provider")
}
