package manifests_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/manifests"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// env serves the manifest routes over a SQLite cache.
type env struct {
	st  store.Store
	url string
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith serves the routes reading Pods' logs through kube.
func newEnvWith(t *testing.T, kube manifests.Kubernetes) *env {
	t.Helper()
	st := storetest.SQLite(t)
	mux := http.NewServeMux()
	manifests.New(st, kube, slog.New(slog.DiscardHandler)).Routes(mux)
	srv := httptest.NewServer(manifests.EmptyLocations(httpapi.MuxErrors(mux)))
	t.Cleanup(srv.Close)
	return &env{st: st, url: srv.URL}
}

// put caches obj (JSON) as an object of account main.
func (e *env) put(t *testing.T, group, version, resource, kind string, namespaced bool, obj string) {
	t.Helper()
	var md struct {
		Metadata struct {
			Name, Namespace     string
			Annotations, Labels map[string]string
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(obj), &md); err != nil {
		t.Fatalf("%v: %s", err, obj)
	}
	res := store.Resource{Group: group, Version: version, Resource: resource, Kind: kind, Namespaced: namespaced}
	err := e.st.ApplyChanges(context.Background(), []store.Change{{Type: store.Upserted, Stream: store.StreamKey{Account: "main", Resource: res},
		Object: &store.Object{ObjectKey: store.ObjectKey{Account: "main", Group: group, Kind: kind, Namespace: md.Metadata.Namespace, Name: md.Metadata.Name},
			Version: version, ResourceVersion: "10", JSON: []byte(obj), Labels: md.Metadata.Labels,
			// As the agent sends it.
			Application: store.ApplicationOf(md.Metadata.Annotations, md.Metadata.Labels)}}})
	if err != nil {
		t.Fatal(err)
	}
}

// get answers the status and body of GET path.
func (e *env) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) wantError(t *testing.T, path string, code int, msg string) {
	t.Helper()
	got, body := e.get(t, path)
	var apiErr struct{ Message string }
	if got != code || json.Unmarshal([]byte(body), &apiErr) != nil || !strings.Contains(apiErr.Message, msg) {
		t.Errorf("GET %s: %d %s, want %d with %q", path, got, body, code, msg)
	}
}

type manifest struct {
	Account, Name, Location string
	Moniker                 map[string]any
	Manifest                map[string]any
	Status                  map[string]struct {
		State   bool
		Message string
	}
	Artifacts []struct{ Type, Name, Reference, Location string }
	Events    []struct {
		Metadata struct{ Name string }
	}
	Warnings, Metrics []any
}

func (e *env) manifest(t *testing.T, path string) manifest {
	t.Helper()
	code, body := e.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var m manifest
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	if m.Warnings == nil || m.Metrics == nil || m.Events == nil || m.Artifacts == nil {
		t.Errorf("GET %s: lists must be [], not null: %s", path, body)
	}
	return m
}

const web = `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod", "generation": 2, "uid": "u-web",
  "annotations": {"moniker.spinnaker.io/application": "shop", "moniker.spinnaker.io/cluster": "deployment web", "moniker.spinnaker.io/sequence": "3"}},
  "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "registry.example/web:1.2",
    "envFrom": [{"configMapRef": {"name": "web-config-v002"}}]}]}}},
  "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1, "readyReplicas": 1}}`

func event(name, kind, obj, last string) string {
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Event", "metadata": {"name": %q, "namespace": "prod"},
  "involvedObject": {"kind": %q, "name": %q}, "reason": "R", "message": "M", "type": "Normal", "lastTimestamp": %q}`, name, kind, obj, last)
}

func replicaSet(name, created string, replicas int) string {
	return fmt.Sprintf(`{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": %q, "namespace": "prod", "creationTimestamp": %q,
  "annotations": {"moniker.spinnaker.io/application": "shop", "moniker.spinnaker.io/cluster": "replicaSet api"}},
  "spec": {"replicas": %d}}`, name, created, replicas)
}

func TestManifestReads(t *testing.T) {
	e := newEnv(t)
	e.put(t, "apps", "v1", "deployments", "Deployment", true, web)
	e.put(t, "", "v1", "events", "Event", true, event("web.2", "Deployment", "web", "2026-01-02T00:00:00Z"))
	e.put(t, "", "v1", "events", "Event", true, event("web.1", "Deployment", "web", "2026-01-01T00:00:00Z"))
	e.put(t, "", "v1", "events", "Event", true, event("web.3", "ReplicaSet", "web", "2026-01-01T00:00:00Z"))
	e.put(t, "events.k8s.io", "v1", "events", "Event", true, `{"kind": "Event", "metadata": {"name": "other", "namespace": "prod"}}`)
	e.put(t, "", "v1", "namespaces", "Namespace", false, `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}, "status": {"phase": "Active"}}`)
	e.put(t, "argoproj.io", "v1alpha1", "rollouts", "Rollout", true, `{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r", "namespace": "prod"}}`)
	e.put(t, "argoproj.io", "v1alpha1", "rollouts", "Rollout", true, `{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "odd", "namespace": "prod"}, "spec": {"replicas": "many"}}`)
	e.put(t, "a.example.com", "v1", "things", "Thing", true, `{"apiVersion": "a.example.com/v1", "kind": "Thing", "metadata": {"name": "x", "namespace": "prod"}}`)
	e.put(t, "b.example.com", "v1", "things", "Thing", true, `{"apiVersion": "b.example.com/v1", "kind": "Thing", "metadata": {"name": "x", "namespace": "prod"}}`)
	e.put(t, "apps", "v1", "replicasets", "ReplicaSet", true, replicaSet("api-v001", "2026-01-01T00:00:00Z", 3))
	e.put(t, "apps", "v1", "replicasets", "ReplicaSet", true, replicaSet("api-v003", "2026-01-03T00:00:00Z", 1))
	e.put(t, "apps", "v1", "replicasets", "ReplicaSet", true, replicaSet("api-v002", "2026-01-02T00:00:00Z", 2))
	e.put(t, "apps", "v1", "replicasets", "ReplicaSet", true, strings.Replace(replicaSet("other-v000", "2026-01-04T00:00:00Z", 9), `"replicaSet api"`, `"replicaSet other"`, 1))

	t.Run("one object", func(t *testing.T) {
		m := e.manifest(t, "/manifests/main/prod/deployment%20web")
		if m.Account != "main" || m.Name != "deployment web" || m.Location != "prod" || m.Manifest["kind"] != "Deployment" {
			t.Errorf("identity: %+v", m)
		}
		if m.Moniker["app"] != "shop" || m.Moniker["cluster"] != "deployment web" || m.Moniker["sequence"] != 3.0 {
			t.Errorf("moniker %v", m.Moniker)
		}
		if st := m.Status; st["stable"].State || st["stable"].Message != "Waiting for all replicas to be available" || st["failed"].State || !st["available"].State {
			t.Errorf("status %+v", st)
		}
		wantArtifacts := []struct{ Type, Name, Reference, Location string }{
			{"docker/image", "registry.example/web", "registry.example/web:1.2", ""},
			{"kubernetes/configMap", "web-config-v002", "web-config-v002", "prod"},
		}
		if !reflect.DeepEqual(m.Artifacts, wantArtifacts) {
			t.Errorf("artifacts %+v, want %+v", m.Artifacts, wantArtifacts)
		}
		if len(m.Events) != 2 || m.Events[0].Metadata.Name != "web.1" || m.Events[1].Metadata.Name != "web.2" {
			t.Errorf("events %+v, want web.1, web.2 (the Deployment's, oldest first)", m.Events)
		}
	})
	t.Run("without events", func(t *testing.T) {
		if m := e.manifest(t, "/manifests/main/prod/deployment%20web?includeEvents=false"); len(m.Events) != 0 {
			t.Errorf("events %+v, want none", m.Events)
		}
	})
	t.Run("kind spellings", func(t *testing.T) {
		for _, k := range []string{"Deployment", "deploy", "deployments", "DEPLOYMENT"} {
			if m := e.manifest(t, "/manifests/main/prod/"+k+"%20web"); m.Name != "deployment web" {
				t.Errorf("%s: name %q", k, m.Name)
			}
		}
		if m := e.manifest(t, "/manifests/main/prod/rs%20api-v001"); m.Name != "replicaSet api-v001" {
			t.Errorf("rs: name %q", m.Name)
		}
		if m := e.manifest(t, "/manifests/main/prod/Rollout.argoproj.io%20r"); m.Name != "Rollout.argoproj.io r" || !m.Status["stable"].State {
			t.Errorf("custom resource: %+v", m)
		}
		for _, k := range []string{"Rollout", "rollouts"} {
			if m := e.manifest(t, "/manifests/main/prod/"+k+"%20r"); m.Name != "Rollout.argoproj.io r" {
				t.Errorf("%s, a custom resource's kind without its group: name %q", k, m.Name)
			}
		}
		if m := e.manifest(t, "/manifests/main/prod/Rollout.argoproj.io%20odd"); m.Name != "Rollout.argoproj.io odd" {
			t.Errorf("custom resource with a spec.replicas that is not a number: %+v", m)
		}
	})
	t.Run("cluster-scoped", func(t *testing.T) {
		for _, p := range []string{"/manifests/main/namespace%20prod", "/manifests/main/_/namespace%20prod", "/manifests/main//namespace%20prod", "/manifests/main/prod/ns%20prod"} {
			if m := e.manifest(t, p); m.Name != "namespace prod" || m.Location != "" {
				t.Errorf("%s: %+v", p, m)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		e.wantError(t, "/manifests/main/prod/deployment%20nope", http.StatusNotFound, `no cached deployment "nope" in namespace "prod" in account "main"`)
		e.wantError(t, "/manifests/main/staging/deployment%20web", http.StatusNotFound, `in namespace "staging"`)
		e.wantError(t, "/manifests/main/prod/deployment", http.StatusBadRequest, `name: "deployment" is not "KIND NAME"`)
		e.wantError(t, "/manifests/main/prod/deployment%20web%20x", http.StatusBadRequest, `is not "KIND NAME"`)
		e.wantError(t, "/manifests/main/prod/deployment%20web%00", http.StatusBadRequest, `the name "web\x00" is not one a cached object can have`)
		e.wantError(t, "/manifests/main/prod/deployment%20"+strings.Repeat("n", 254), http.StatusBadRequest, "at most 253 bytes")
		e.wantError(t, "/manifests/main/prod/deployment%20"+strings.Repeat("n", 70000), http.StatusBadRequest, "70011 bytes, longer than")
		e.wantError(t, "/manifests/main/prod/statefulSet%20web", http.StatusNotFound, `account "main" caches no kind "statefulSet"`)
		e.wantError(t, "/manifests/nobody/prod/deployment%20web", http.StatusNotFound, `account "nobody" has nothing cached`)
		e.wantError(t, "/manifests/main/deployment%20web", http.StatusBadRequest, "location: required for deployment, a namespaced kind")
		e.wantError(t, "/manifests/main/prod/deployment%20web?includeEvents=maybe", http.StatusBadRequest, "includeEvents")
		e.wantError(t, "/manifests/main/prod/deployment%20web?includeEvents=1", http.StatusBadRequest, "includeEvents")
		e.wantError(t, "/manifests/main/Prod/deployment%20web", http.StatusBadRequest, `location: "Prod" is not a namespace name`)
		e.wantError(t, "/manifests/main/prod_1/replicaSet/cluster/shop/replicaSet%20api", http.StatusBadRequest, `location: "prod_1"`)
		e.wantError(t, "/manifests/main/prod/Thing%20x", http.StatusNotFound, `account "main" caches "Thing" in several API groups: name one, as Thing.a.example.com or Thing.b.example.com`)
		e.wantError(t, "/manifests/main/prod/deployment%20web?includeEvent=false", http.StatusBadRequest, "includeEvent")
	})
	t.Run("cluster", func(t *testing.T) {
		code, body := e.get(t, "/manifests/main/prod/replicaSet/cluster/shop/replicaSet%20api")
		want := `[{"kind":"replicaSet","namespace":"prod","name":"api-v001"},{"kind":"replicaSet","namespace":"prod","name":"api-v002"},{"kind":"replicaSet","namespace":"prod","name":"api-v003"}]`
		if code != http.StatusOK || strings.TrimSpace(body) != want {
			t.Errorf("cluster: %d %s, want %s", code, body, want)
		}
		if code, body := e.get(t, "/manifests/main/prod/replicaSet/cluster/other-app/replicaSet%20api"); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
			t.Errorf("another application's cluster: %d %s, want []", code, body)
		}
		for criteria, name := range map[string]string{"oldest": "api-v001", "newest": "api-v003", "second_newest": "api-v002", "largest": "api-v001", "smallest": "api-v003"} {
			code, body := e.get(t, "/manifests/main/prod/replicaSet/cluster/shop/replicaSet%20api/dynamic/"+criteria)
			want := fmt.Sprintf(`{"kind":"replicaSet","namespace":"prod","name":%q}`, name)
			if code != http.StatusOK || strings.TrimSpace(body) != want {
				t.Errorf("%s: %d %s, want %s", criteria, code, body, want)
			}
		}
		e.wantError(t, "/manifests/main/prod/replicaSet/cluster/shop/replicaSet%20other/dynamic/second_newest", http.StatusNotFound, "has 1 cached replicaSet objects")
		e.wantError(t, "/manifests/main/prod/replicaSet/cluster/shop/replicaSet%20api/dynamic/biggest", http.StatusBadRequest, `criteria: "biggest"`)
		e.wantError(t, "/manifests/main//replicaSet/cluster/shop/replicaSet%20api", http.StatusBadRequest, "location: required for replicaSet")
		// Two empty segments are two "_": no such endpoint (not a redirect
		// escaping the name twice).
		e.wantError(t, "/manifests/main///namespace%20prod", http.StatusNotFound, `no endpoint GET "/manifests/main/_/_/namespace prod"`)
		if code, body := e.get(t, "/manifests/main//namespace/cluster/shop/namespace%20prod"); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
			t.Errorf("a cluster-scoped kind's cluster, empty location: %d %s", code, body)
		}
	})
}

// Orca's force cache refresh is done when asked: nothing is pending.
func TestCacheRefresh(t *testing.T) {
	e := newEnv(t)
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(e.url+"/cache/kubernetes/manifest", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(`{"account": "main", "name": "deployment web", "location": "prod"}`); code != http.StatusOK {
		t.Errorf("refresh: %d %s, want 200 (processed)", code, body)
	}
	if code, body := e.get(t, "/cache/kubernetes/manifest"); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("pending refreshes: %d %s, want []", code, body)
	}
	for body, msg := range map[string]string{
		`{"name": "deployment web"}`:                   "account: required",
		`{"account": "main"}`:                          "name: required",
		`{"account": "main", "name": "web"}`:           `name: "web" is not "KIND NAME"`,
		`{"account": "main", "name": "deployment web"`: "body",
	} {
		code, got := post(body)
		var apiErr struct{ Message string }
		if code != http.StatusBadRequest || json.Unmarshal([]byte(got), &apiErr) != nil || !strings.Contains(apiErr.Message, msg) {
			t.Errorf("refresh %s: %d %s, want 400 with %q", body, code, got, msg)
		}
	}
}
