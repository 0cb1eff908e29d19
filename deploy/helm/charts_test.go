package helm_test

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/kubesvc/kubesvc/internal/certs/certstest"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// helmBin builds (once, cached) and returns the pinned helm.
func helmBin(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("../../scripts/helm.sh").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("scripts/helm.sh: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("scripts/helm.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// render runs helm template and returns the objects, or helm's error.
func render(t *testing.T, chart, release, namespace string, valuesFiles ...string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	args := []string{"template", release, chart, "--namespace", namespace}
	for _, f := range valuesFiles {
		args = append(args, "-f", commaFree(t, f))
	}
	cmd := exec.Command(helmBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(stderr.String())
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			t.Fatalf("decode helm output: %v", err)
		}
		if m != nil {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// commaFree returns path, or a copy of it where helm can read it: helm
// splits -f on commas, which subtest names put in temporary paths.
func commaFree(t *testing.T, path string) string {
	t.Helper()
	if !strings.Contains(path, ",") {
		return path
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp("", "values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func typed[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}

// mountedPaths matches the absolute paths a rendered configuration names.
var mountedPaths = regexp.MustCompile(`/(?:etc/kubesvc|kubeconfigfiles|var/lib/kubesvc)/[A-Za-z0-9._/-]+`)

// materialize checks that every file the configuration names lies in a
// volume the pod mounts (and the config file itself), writes a stand-in
// for each under root (what the Secret or volume would hold), and returns
// the configuration with its paths moved under root.
func materialize(t *testing.T, config string, pod corev1.PodSpec, root string, content func(path string) []byte) string {
	t.Helper()
	for _, p := range mountedPaths.FindAllString(config, -1) {
		mounted := false
		for _, c := range pod.Containers {
			for _, m := range c.VolumeMounts {
				if strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
					mounted = true
				}
			}
		}
		if !mounted {
			t.Errorf("the configuration names %s, which no volume mount of the pod provides", p)
			continue
		}
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			t.Fatal(err)
		}
		if data := content(p); data != nil {
			if err := os.WriteFile(full, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return mountedPaths.ReplaceAllStringFunc(config, func(p string) string { return filepath.Join(root, p) })
}

// writeRendered materializes the configuration file name of cm (see
// materialize), checks that the pod's container is started with
// --config configPath, and writes the file under a new root; it returns
// the file's path and content.
func writeRendered(t *testing.T, cm *corev1.ConfigMap, d *appsv1.Deployment, name, configPath string, files func(string) []byte) (path, text string) {
	t.Helper()
	root := t.TempDir()
	text = materialize(t, cm.Data[name], d.Spec.Template.Spec, root, files)
	if args := d.Spec.Template.Spec.Containers[0].Args; len(args) != 2 || args[0] != "--config" || args[1] != configPath {
		t.Errorf("container args %q, want --config %s", args, configPath)
	}
	path = filepath.Join(root, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, text
}

// secretFiles stands in for the Secrets the values name.
func secretFiles(t *testing.T, kubeconfig string) func(string) []byte {
	ca := certstest.NewCA(t, "chart test CA")
	leaf := ca.Issue(t, pkix.Name{CommonName: "kubesvc"})
	return func(p string) []byte {
		switch base := filepath.Base(p); {
		case base == "tls.crt":
			return leaf.CertPEM
		case base == "tls.key":
			return leaf.KeyPEM
		case base == "ca.crt":
			return ca.PEM
		case base == "dsn":
			return []byte("kubesvc:pw@tcp(mysql:3306)/kubesvc\n")
		case base == "secret":
			return []byte(strings.Repeat("s", 40))
		case base == "key": // the dynamic accounts' sealing key: 32 bytes, base64
			return []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
		case strings.HasPrefix(p, "/kubeconfigfiles/"):
			b, err := os.ReadFile(kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		return nil // a directory or a file the process creates (SQLite)
	}
}

// apply server-side applies the objects into namespace and returns a
// clientset.
func apply(t *testing.T, c *testenv.Cluster, namespace string, objs []*unstructured.Unstructured) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(c.RESTConfig())))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == "namespace" {
			ri = dyn.Resource(m.Resource).Namespace(namespace)
		}
		data, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "chart-test", Force: ptr(true)}); err != nil {
			t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	rbacCaughtUp(t, cs, namespace)
	return cs
}

// rbacCaughtUp returns once the API server authorizes by every RBAC object
// written so far. Its authorizer reads Roles, ClusterRoles and their
// bindings from caches that follow each kind's writes in order, a moment
// later (a SubjectAccessReview right after a binding's creation is often
// denied): a Role, a ClusterRole and their bindings written now take
// effect only once those caches have caught up past everything written
// before them, what apply wrote included. Then can answers for the
// objects applied, allowed or not, at once.
func rbacCaughtUp(t *testing.T, cs kubernetes.Interface, namespace string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("chart-test-rbac-marker-%d", rbacMarkers.Add(1))
	user := "user-" + name
	// Distinct verbs: each review is allowed by its own binding only.
	rule := func(verb string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{{APIGroups: []string{"chart-test.example.com"}, Resources: []string{"markers"}, Verbs: []string{verb}}}
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: user}}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rule("list")}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rule("get")}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	allowed := func(verb, ns string) bool {
		r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: "chart-test.example.com", Resource: "markers", Namespace: ns}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for deadline := time.Now().Add(30 * time.Second); !allowed("list", "") || !allowed("get", namespace); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the API server's authorizer did not catch up with the RBAC objects written in 30 s")
		}
	}
}

// rbacMarkers numbers rbacCaughtUp's objects.
var rbacMarkers atomic.Int64

func ptr[T any](v T) *T { return &v }

// can asks the API server whether the service account may do verb on
// resource (group/resource) in namespace ("" for all namespaces); an
// optional name narrows it to one object.
func can(t *testing.T, cs kubernetes.Interface, sa, saNamespace, verb, group, resource, namespace string, name ...string) bool {
	t.Helper()
	var objectName string
	if len(name) > 0 {
		objectName = name[0]
	}
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + saNamespace + ":" + sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Group: group, Resource: resource, Namespace: namespace, Name: objectName,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}

func TestChartsLint(t *testing.T) {
	for chart, values := range map[string][]string{
		"kubesvc-controlplane": {"", "testdata/controlplane-ha.yaml"},
		"kubesvc-agent":        {"", "testdata/agent-multi.yaml"},
	} {
		for _, v := range values {
			args := []string{"lint", "--strict", chart}
			if v != "" {
				args = append(args, "-f", v)
			}
			if out, err := exec.Command(helmBin(t), args...).CombinedOutput(); err != nil {
				t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
}

// The images' build step (deploy/Dockerfile): both binaries build without
// cgo and are statically linked, as a distroless static image needs.
func TestStaticBuild(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+string(filepath.Separator), "./cmd/controlplane", "./cmd/agent")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	for _, name := range []string{"controlplane", "agent"} {
		f, err := elf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (it has an ELF interpreter)", name)
			}
		}
		f.Close()
	}
}
