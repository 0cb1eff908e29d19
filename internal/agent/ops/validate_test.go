package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestValidateStatic(t *testing.T) {
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`
	cases := []struct {
		op, payload, field, msg string
	}{
		{"deployManifest", `[]`, "", "must be a JSON object"},
		{"deployManifest", `{"manifests": [`, "", "malformed JSON"},
		{"deployManifest", `{"moniker":{"app":"a"}}`, "manifests", "required"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":{}}`, "manifests", "must be a list"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"kind":"ConfigMap","metadata":{"name":"c"}}]}`, "manifests[0].apiVersion", "required"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"a/b/c","kind":"X","metadata":{"name":"c"}}]}`, "manifests[0].apiVersion", "malformed apiVersion"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","metadata":{"name":"c"}}]}`, "manifests[0].kind", "required"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap"}]}`, "manifests[0].metadata", "required"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}]}`, "manifests[0].metadata.name", "required"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a/b"}}]}`, "manifests[0].metadata.name", "invalid name"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"Bad_NS"}}]}`, "manifests[0].metadata.namespace", "invalid namespace"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"x":1}}}]}`, "manifests[0].metadata.labels.x", "must be a string"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[` + cm + `,"x"]}`, "manifests[1]", "must be a JSON object"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"List","items":[` + cm + `,{"apiVersion":"v1"}]}]}`, "manifests[0].items[1].kind", "required"},
		{"deployManifest", `{"manifests":[` + cm + `]}`, "moniker.app", "required"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[null]}`, "manifests", "every one given is null"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"caf\u00e9"}}]}`, "manifests[0].metadata.name", "only ASCII characters"},
		{"deployManifest", `{"moniker":{"app":"a"},"strategy":"RED_BLACK","manifests":[{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r",
			"annotations":{"strategy.spinnaker.io/max-version-history":"1"}}}]}`, "manifests[0].metadata.annotations", "at least 2 with the red/black strategy"},
		{"deployManifest", `{"moniker":{"app":"a"},"services":["service a"],"manifests":[{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r",
			"annotations":{"traffic.spinnaker.io/load-balancers":"[\"service b\"]"}}}]}`, "manifests[0].metadata.annotations", "already has traffic.spinnaker.io/load-balancers"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"port":8080}}]}`, "manifests[0].data.port", "quote it in YAML"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"binaryData":{"b":true}}]}`, "manifests[0].binaryData.b", "must be a string"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"},"stringData":{"p":1}}]}`, "manifests[0].stringData.p", "values of a Secret are strings"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"},"data":{"p":"cGFzcw==","q":"not base64!"}}]}`, "manifests[0].data.q", "not base64 (illegal base64 data at input byte 3); put plain text in stringData"},
		{"deployManifest", `{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"binaryData":{"b":"AAA"}}]}`, "manifests[0].binaryData.b", "not base64"},
		{"deployManifest", `{"moniker":{"app":"a","sequence":"x"},"manifests":[` + cm + `]}`, "moniker.sequence", "must be an integer"},
		{"deployManifest", `{"moniker":{"app":"a"},"versioned":"maybe","manifests":[` + cm + `]}`, "versioned", "must be a boolean"},
		{"deployManifest", `{"moniker":{"app":"a"},"services":["frontend"],"manifests":[` + cm + `]}`, "services[0]", `"service NAME"`},
		{"deployManifest", `{"moniker":{"app":"a"},"services":["ingress x"],"manifests":[` + cm + `]}`, "services[0]", "only Services"},
		{"deployManifest", `{"moniker":{"app":"a"},"requiredArtifacts":[{"name":"x"}],"manifests":[` + cm + `]}`, "requiredArtifacts[0].type", "required"},
		{"deployManifest", `{"moniker":{"app":"a"},"namespaceOverride":"-x","manifests":[` + cm + `]}`, "namespaceOverride", "invalid namespace"},
		{"deleteManifest", `{"location":"ns"}`, "manifestName", "required"},
		{"deleteManifest", `{"manifestName":"deployment","location":"ns"}`, "manifestName", `"KIND NAME"`},
		{"deleteManifest", `{"kinds":["configMap"],"location":"ns"}`, "labelSelectors", "required with kinds"},
		{"deleteManifest", `{"kinds":["configMap"],"labelSelectors":{"selectors":[{"kind":"LIKE","key":"a"}]}}`, "labelSelectors.selectors[0].kind", "must be ANY"},
		{"deleteManifest", `{"kinds":["configMap"],"labelSelectors":{"selectors":[{"kind":"ANY"}]}}`, "labelSelectors", "every object"},
		{"deleteManifest", `{"kinds":["namespace"],"labelSelectors":""}`, "labelSelectors", "every object"},
		{"deleteManifest", `{"kinds":["configMap"],"labelSelectors":{"selectors":[{"kind":"EQUALS","key":"a b","values":["x"]}]}}`, "labelSelectors.selectors[0]", "name part must consist"},
		{"deleteManifest", `{"manifestName":"cm x","options":{"cascading":"sometimes"}}`, "options.cascading", "must be a boolean"},
		{"deleteManifest", `{"manifestName":"cm x","options":{"gracePeriodSeconds":-1}}`, "options.gracePeriodSeconds", "non-negative"},
		{"deleteManifest", `{"manifestName":"cm x","options":{"propagationPolicy":"Now"}}`, "options.propagationPolicy", "Orphan, Background or Foreground"},
		{"scaleManifest", `{"manifestName":"deployment x","location":"ns"}`, "replicas", "required"},
		{"scaleManifest", `{"manifestName":"deployment x","replicas":-1}`, "replicas", "between 0"},
		{"scaleManifest", `{"manifestName":"deployment x","replicas":"three"}`, "replicas", "must be an integer"},
		{"patchManifest", `{"manifestName":"deployment x"}`, "patchBody", "required"},
		{"patchManifest", `{"manifestName":"deployment x","patchBody":[],"options":{"mergeStrategy":"strategic"}}`, "patchBody", "JSON object"},
		{"patchManifest", `{"manifestName":"deployment x","patchBody":{},"options":{"mergeStrategy":"json"}}`, "patchBody", "list of JSON patch"},
		{"patchManifest", `{"manifestName":"deployment x","patchBody":[{"path":"/a"}],"options":{"mergeStrategy":"json"}}`, "patchBody[0].op", "required"},
		{"patchManifest", `{"manifestName":"deployment x","patchBody":{},"options":{"mergeStrategy":"xml"}}`, "options.mergeStrategy", "strategic, merge or json"},
		{"undoRolloutManifest", `{"manifestName":"deployment x","revision":0}`, "revision", "positive"},
		{"undoRolloutManifest", `{"manifestName":"deployment x","numRevisionsBack":-2}`, "numRevisionsBack", "negative"},
		{"pauseRolloutManifest", `{"location":"ns"}`, "manifestName", "required"},
		{"runJob", `{"application":"a"}`, "manifest", "required"},
		{"runJob", `{"application":"a","manifest":` + cm + `}`, "manifest.kind", "must be Job"},
		{"runJob", `{"manifest":{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"}}}`, "application", "required"},
		{"enableManifest", `{"manifestName":"replicaSet x","loadBalancers":["x"]}`, "loadBalancers[0]", `"service NAME"`},
		{"frobnicateManifest", `{}`, "", "unknown operation type"},
	}
	for _, c := range cases {
		t.Run(c.op+"/"+c.field, func(t *testing.T) {
			err := Validate(c.op, []byte(c.payload))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate(%s) = %v, want a *ValidationError", c.payload, err)
			}
			if ve.Op != c.op || ve.Field != c.field || !strings.Contains(ve.Message, c.msg) {
				t.Fatalf("got Op %q Field %q Message %q, want Op %q Field %q Message containing %q",
					ve.Op, ve.Field, ve.Message, c.op, c.field, c.msg)
			}
			if !strings.HasPrefix(err.Error(), c.op+": ") {
				t.Errorf("error %q does not start with the operation type", err)
			}
		})
	}
	if err := Validate("frobnicateManifest", []byte(`{}`)); !errors.Is(err, ErrUnknownOperation) {
		t.Errorf("unknown operation: %v does not wrap ErrUnknownOperation", err)
	}
}

func TestValidateAcceptsClouddriverShapes(t *testing.T) {
	ok := map[string]string{
		"deployManifest": `{"account":"k","cloudProvider":"kubernetes","source":"text","moniker":{"app":"shop","sequence":"2"},
			"versioned":"false","enableTraffic":true,"services":["service web"],"strategy":"RED_BLACK","skipSpecTemplateLabels":false,
			"manifests":[{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}],
			"requiredArtifacts":[{"type":"docker/image","name":"nginx","reference":"nginx:1.27"}]}`,
		"deleteManifest":         `{"manifestName":"deployment web","location":"ns","options":{"cascading":true,"gracePeriodSeconds":"5"}}`,
		"scaleManifest":          `{"manifestName":"deployment web","location":"ns","replicas":"3"}`,
		"patchManifest":          `{"manifestName":"deployment web","location":"ns","patchBody":[{"op":"add","path":"/metadata/labels/a","value":"b"}],"options":{"mergeStrategy":"json","record":true}}`,
		"undoRolloutManifest":    `{"manifestName":"deployment web","location":"ns","numRevisionsBack":1}`,
		"rollingRestartManifest": `{"manifestName":"deployment web","location":"ns"}`,
		"runJob":                 `{"application":"shop","manifest":{"apiVersion":"batch/v1","kind":"Job","metadata":{"generateName":"j-"}}}`,
		"disableManifest":        `{"manifestName":"replicaSet web-v001","location":"ns","loadBalancers":["service web"]}`,
	}
	// An RBAC name with a space and a colon; empty values (YAML "KEY:").
	for _, p := range []string{
		`{"moniker":{"app":"a"},"manifests":[{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"read only:x"}}]}`,
		`{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"EMPTY":null}}]}`,
		`{"moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"},"data":{"p":"cGFz\ncw==\n","e":"","n":null}}]}`,
		// A custom kind named Secret holds what its schema says.
		`{"moniker":{"app":"a"},"manifests":[{"apiVersion":"example.com/v1","kind":"Secret","metadata":{"name":"c"},"data":{"p":"plain text"}}]}`,
		`{"moniker":{"app":"a"},"manifests":[],"manifest":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}}`,
		`{"moniker":{"app":"a"},"manifests":[null],"manifest":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}}`,
	} {
		if err := Validate("deployManifest", []byte(p)); err != nil {
			t.Errorf("Validate(%s): %v", p, err)
		}
	}
	// Clouddriver drops null manifests (a pipeline's SpEL may leave one).
	if err := Validate("deployManifest", []byte(`{"moniker":{"app":"a"},"manifests":[null,{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}`)); err != nil {
		t.Errorf("a deploy with a null manifest: %v", err)
	}
	for op, p := range ok {
		if err := Validate(op, []byte(p)); err != nil {
			t.Errorf("Validate(%s): %v", op, err)
		}
	}
}

func TestKindName(t *testing.T) {
	for gk, want := range map[schema.GroupKind]string{
		{Kind: "ConfigMap"}:                                    "configMap",
		{Group: "apps", Kind: "Deployment"}:                    "deployment",
		{Group: "apps", Kind: "ReplicaSet"}:                    "replicaSet",
		{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:    "PriorityClass",
		{Group: "argoproj.io", Kind: "Rollout"}:                "Rollout.argoproj.io",
		{Group: "networking.istio.io", Kind: "VirtualService"}: "virtualService.networking.istio.io",
	} {
		if got := KindName(gk); got != want {
			t.Errorf("KindName(%v) = %q, want %q", gk, got, want)
		}
	}
}

func TestVersionOf(t *testing.T) {
	for _, c := range []struct {
		name string
		ann  map[string]string
		want int
	}{
		{"cfg-v000", nil, 0},
		{"cfg-v012", nil, 12},
		{"cfg-v1000", nil, 1000},
		{"cfg-x-v001", nil, -1},
		{"cfg", nil, -1},
		{"cfg-v01", nil, -1},
		{"renamed", map[string]string{AnnotationArtifactName: "cfg", AnnotationArtifactVersion: "v007"}, 7},
		{"renamed", map[string]string{AnnotationArtifactName: "cfg", AnnotationArtifactType: "kubernetes/secret", AnnotationArtifactVersion: "v007"}, -1},
	} {
		if got := versionOf(c.name, c.ann, "cfg", "kubernetes/configMap"); got != c.want {
			t.Errorf("versionOf(%q, %v) = %d, want %d", c.name, c.ann, got, c.want)
		}
	}
}

func TestBindArtifacts(t *testing.T) {
	obj := map[string]any{"kind": "Deployment", "spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "a", "image": "gcr.io/x/app:old",
			"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": "cfg"}}},
			"env":     []any{map[string]any{"name": "E", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "sec", "key": "k"}}}}}},
		"initContainers": []any{map[string]any{"name": "i", "image": "busybox"}},
		"volumes": []any{map[string]any{"name": "v", "configMap": map[string]any{"name": "cfg"}},
			map[string]any{"name": "p", "projected": map[string]any{"sources": []any{map[string]any{"secret": map[string]any{"name": "sec"}}}}}},
	}}}}
	arts := []Artifact{
		{Type: "docker/image", Name: "gcr.io/x/app", Reference: "gcr.io/x/app@sha256:abc"},
		{Type: "kubernetes/configMap", Name: "cfg", Location: "ns", Reference: "cfg-v002"},
		{Type: "kubernetes/secret", Name: "sec", Location: "other", Reference: "sec-v001"},
	}
	bound := bindArtifacts(obj, "ns", "acct", arts)
	b, _ := json.Marshal(obj)
	s := string(b)
	for _, want := range []string{`"image":"gcr.io/x/app@sha256:abc"`, `"configMapRef":{"name":"cfg-v002"}`, `"configMap":{"name":"cfg-v002"}`, `"image":"busybox"`, `"name":"sec"`} {
		if !strings.Contains(s, want) {
			t.Errorf("bound manifest lacks %s: %s", want, s)
		}
	}
	if len(bound) != 2 {
		t.Errorf("bound %v, want the image and the configMap (the secret is in another namespace)", bound)
	}
	for ref, want := range map[string]string{"nginx": "nginx", "nginx:1.2": "nginx", "host:5000/a/b:t": "host:5000/a/b", "host:5000/a/b": "host:5000/a/b", "a@sha256:x": "a"} {
		if got := imageName(ref); got != want {
			t.Errorf("imageName(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestResultJSONShape(t *testing.T) {
	b, err := json.Marshal(Result{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"manifestNamesByNamespace":{},"manifests":[],"createdArtifacts":[],"boundArtifacts":[]}`
	if string(b) != want {
		t.Errorf("empty result = %s, want %s", b, want)
	}
}

func TestRetries(t *testing.T) {
	e := &Executor{retries: Retries{Enabled: true, MaxRetries: 2, BackOff: time.Millisecond, RetryableErrors: []string{"timeout", "Deadline Exceeded"}}}
	e.opts.Logger = discardLogger()
	gr := schema.GroupResource{Resource: "deployments"}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewConflict(gr, "x", errors.New("changed")), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewInternalError(errors.New("boom")), true},
		{apierrors.NewServiceUnavailable("later"), true},
		{apierrors.NewNotFound(gr, "x"), false},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{errors.New("net/http: TLS handshake timeout"), true},
		{errors.New("context deadline exceeded"), true},
		{errors.New("connection refused"), false},
		{permanent{errors.New("timeout but permanent")}, false},
		{invalid("x", "timeout"), false},
		{context.Canceled, false},
	} {
		if got := e.retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}

	calls := 0
	err := e.do(context.Background(), "op", func(context.Context) error {
		calls++
		return apierrors.NewServiceUnavailable("later")
	})
	if calls != 3 || !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Errorf("do: %d calls, err %v; want 3 calls and a wrapped 503", calls, err)
	}
	calls = 0
	err = e.do(context.Background(), "op", func(context.Context) error {
		calls++
		if calls < 2 {
			return fmt.Errorf("read: i/o timeout")
		}
		return nil
	})
	if calls != 2 || err != nil {
		t.Errorf("do: %d calls, err %v; want success on the second", calls, err)
	}
	calls = 0
	_ = e.do(context.Background(), "op", func(context.Context) error {
		calls++
		return apierrors.NewNotFound(gr, "x")
	})
	if calls != 1 {
		t.Errorf("not-found was attempted %d times, want 1", calls)
	}
	// A request not safe to repeat: never after a 5xx or a timeout (it
	// may have been applied), still after a conflict (it was not).
	for _, c := range []struct {
		err   error
		calls int
	}{
		{apierrors.NewServiceUnavailable("later"), 1},
		{fmt.Errorf("read: i/o timeout"), 1},
		{apierrors.NewConflict(gr, "x", errors.New("changed")), 3},
	} {
		calls = 0
		_ = e.doOnce(context.Background(), "op", func(context.Context) error {
			calls++
			return c.err
		})
		if calls != c.calls {
			t.Errorf("doOnce after %v: %d attempts, want %d", c.err, calls, c.calls)
		}
	}
	e.retries.RetryAnyError = true
	if !e.retryable(apierrors.NewNotFound(gr, "x")) {
		t.Error("RetryAnyError does not retry a 404")
	}
	e.retries = Retries{}
	calls = 0
	_ = e.do(context.Background(), "op", func(context.Context) error {
		calls++
		return apierrors.NewConflict(gr, "x", errors.New("changed"))
	})
	if calls != 1 {
		t.Errorf("retries disabled: %d attempts, want 1", calls)
	}
}

func TestDeleteOptions(t *testing.T) {
	for _, c := range []struct {
		opts  map[string]any
		want  metav1.DeletionPropagation
		grace int64
	}{
		{nil, metav1.DeletePropagationBackground, -1},
		{map[string]any{"cascading": true}, metav1.DeletePropagationBackground, -1},
		{map[string]any{"cascading": false, "gracePeriodSeconds": float64(3)}, metav1.DeletePropagationOrphan, 3},
		{map[string]any{"gracePeriodSeconds": float64(0)}, metav1.DeletePropagationBackground, 1}, // never a forced deletion
		{map[string]any{"cascading": "false", "orphanDependents": "false"}, metav1.DeletePropagationBackground, -1},
		{map[string]any{"orphanDependents": true}, metav1.DeletePropagationOrphan, -1},
		{map[string]any{"propagationPolicy": "Foreground", "cascading": true}, metav1.DeletePropagationForeground, -1},
	} {
		do, err := deleteOptions(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if *do.PropagationPolicy != c.want {
			t.Errorf("deleteOptions(%v) policy %s, want %s", c.opts, *do.PropagationPolicy, c.want)
		}
		if (c.grace < 0) != (do.GracePeriodSeconds == nil) || (do.GracePeriodSeconds != nil && *do.GracePeriodSeconds != c.grace) {
			t.Errorf("deleteOptions(%v) grace %v, want %d", c.opts, do.GracePeriodSeconds, c.grace)
		}
	}
}

// Clouddriver takes the account as account or, older, credentials: the
// deploy's artifacts and version locks name it either way.
func TestCredentialsNameTheAccount(t *testing.T) {
	op, err := parseDeploy([]byte(`{"credentials":"k","moniker":{"app":"a"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := op.(*deployOp).d.Account; got != "k" {
		t.Errorf("deploy account %q, want k", got)
	}
	job, err := parseRunJob([]byte(`{"credentials":"k","application":"a","manifest":{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := job.(*deployOp).d.Account; got != "k" {
		t.Errorf("runJob account %q, want k", got)
	}
}

// FindArtifacts lists what a manifest references where bindArtifacts
// would bind, without changing it.
func TestFindArtifacts(t *testing.T) {
	src := `{"kind": "Deployment", "spec": {"template": {"spec": {
  "initContainers": [{"name": "i", "image": "busybox@sha256:abc"}],
  "containers": [{"name": "c", "image": "registry:5000/web:1.2", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "p"}}}]}],
  "volumes": [{"name": "v", "configMap": {"name": "cfg-v003"}}]}}}}`
	var obj map[string]any
	if err := json.Unmarshal([]byte(src), &obj); err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(obj)
	got := FindArtifacts(obj, "prod")
	want := []Artifact{
		{Type: "docker/image", Name: "registry:5000/web", Reference: "registry:5000/web:1.2"},
		{Type: "kubernetes/secret", Name: "creds", Reference: "creds", Location: "prod"},
		{Type: "docker/image", Name: "busybox", Reference: "busybox@sha256:abc"},
		{Type: "kubernetes/configMap", Name: "cfg-v003", Reference: "cfg-v003", Location: "prod"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FindArtifacts = %+v\nwant %+v", got, want)
	}
	if after, _ := json.Marshal(obj); string(after) != string(before) {
		t.Errorf("FindArtifacts changed the manifest: %s", after)
	}
	hpa := map[string]any{"kind": "HorizontalPodAutoscaler", "spec": map[string]any{"scaleTargetRef": map[string]any{"kind": "Deployment", "name": "web"}}}
	if got := FindArtifacts(hpa, "prod"); len(got) != 1 || got[0].Type != "kubernetes/deployment" || got[0].Name != "web" {
		t.Errorf("HPA target: %+v", got)
	}
}
