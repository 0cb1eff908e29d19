package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// clusterEnv is one subtest's view of the shared cluster: its own
// namespace and an executor.
type clusterEnv struct {
	t    *testing.T
	c    *testenv.Cluster
	ex   *Executor
	kube kubernetes.Interface
	dyn  dynamic.Interface
	ns   string
	ctx  context.Context
}

// testRetries keep retries on but short.
var testRetries = Retries{Enabled: true, MaxRetries: 5, BackOff: 200 * time.Millisecond}

func newClusterEnv(t *testing.T, c *testenv.Cluster, opts Options) *clusterEnv {
	t.Helper()
	cfg := c.RESTConfig()
	if opts.Retries == nil {
		r := testRetries
		opts.Retries = &r
	}
	ex, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 60 {
		ns = ns[len(ns)-60:]
	}
	ns = strings.Trim(ns, "-")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &clusterEnv{t: t, c: c, ex: ex, kube: kube, dyn: dynamic.NewForConfigOrDie(cfg), ns: ns, ctx: ctx}
}

// withOptions returns a copy of the environment with another executor.
func (e *clusterEnv) withOptions(opts Options) *clusterEnv {
	e.t.Helper()
	if opts.Retries == nil {
		r := testRetries
		opts.Retries = &r
	}
	ex, err := New(e.c.RESTConfig(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	cp := *e
	cp.ex = ex
	return &cp
}

// run executes an operation and fails the test on error.
func (e *clusterEnv) run(op string, desc map[string]any) Result {
	e.t.Helper()
	res, err := e.try(op, desc)
	if err != nil {
		e.t.Fatalf("%s: %v", op, err)
	}
	// The result must survive the trip to the control plane.
	if _, err := json.Marshal(res); err != nil {
		e.t.Fatalf("%s: marshal result: %v", op, err)
	}
	return res
}

func (e *clusterEnv) try(op string, desc map[string]any) (Result, error) {
	b, err := json.Marshal(desc)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.ex.Execute(e.ctx, op, b)
}

// deploy runs deployManifest for manifests with moniker app "shop".
func (e *clusterEnv) deploy(extra map[string]any, manifests ...map[string]any) Result {
	e.t.Helper()
	desc := map[string]any{"account": "test", "moniker": map[string]any{"app": "shop"}, "manifests": manifests, "namespaceOverride": e.ns}
	for k, v := range extra {
		desc[k] = v
	}
	return e.run(OpDeployManifest, desc)
}

// eventually retries check until it succeeds or 60 s pass.
func (e *clusterEnv) eventually(what string, check func() error) {
	e.t.Helper()
	// Two minutes: most waits are for kube-controller-manager, which on a
	// loaded CI machine once took over a minute to roll out a Deployment
	// (a revision-2 ReplicaSet after a rolling restart). The cluster's logs
	// are printed on failure.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func wantValidation(t *testing.T, err error, field, msg string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a *ValidationError", err)
	}
	if ve.Field != field || !strings.Contains(ve.Message, msg) {
		t.Fatalf("got field %q message %q, want field %q message containing %q", ve.Field, ve.Message, field, msg)
	}
}

func wantNames(t *testing.T, res Result, ns string, want ...string) {
	t.Helper()
	got := slices.Clone(res.ManifestNamesByNamespace[ns])
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("manifestNamesByNamespace[%s] = %v, want %v", ns, got, want)
	}
}

// Manifest builders.

func configMap(name string, data map[string]any, ann map[string]any) map[string]any {
	md := map[string]any{"name": name}
	if ann != nil {
		md["annotations"] = ann
	}
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}
}

func deployment(name, image string, replicas int, volumesFromConfigMap string) map[string]any {
	pod := map[string]any{"containers": []any{map[string]any{"name": "web", "image": image}}}
	if volumesFromConfigMap != "" {
		pod["volumes"] = []any{map[string]any{"name": "cfg", "configMap": map[string]any{"name": volumesFromConfigMap}}}
	}
	return map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": pod},
		},
	}
}

func service(name string, selector map[string]any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"selector": selector, "ports": []any{map[string]any{"port": 80}}}}
}

func checkMap(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s[%s] = %q, want %q (all: %v)", what, k, got[k], v, got)
		}
	}
}

func fmtErr(format string, args ...any) error { return fmt.Errorf(format, args...) }
