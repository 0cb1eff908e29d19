package credentials

import (
	"errors"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// TestResolveSecretRefs resolves secret references against a real API
// server, with a real kubeconfig (the cluster's admin kubeconfig, whose
// client key serves as the secret that no error may contain).
func TestResolveSecretRefs(t *testing.T) {
	c := testenv.StartForTest(t, testenv.Options{})
	admin := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ctx := t.Context()

	kc, err := os.ReadFile(c.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := clientcmd.Load(kc)
	if err != nil {
		t.Fatal(err)
	}
	var clientKey string
	for _, u := range loaded.AuthInfos {
		clientKey = string(u.ClientKeyData)
	}
	if !strings.Contains(clientKey, "PRIVATE KEY") {
		t.Fatal("the admin kubeconfig has no client key")
	}
	const sentinel = "SENTINEL-secretref-c0ffee"
	broken := strings.Replace(string(kc), "clusters:", "clusters: [\n  token: "+sentinel+"\n", 1)

	for _, ns := range []string{"spinnaker", "other"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "spinnaker", Name: "kubeconfig-t"}, Data: map[string][]byte{"config": kc, "other": []byte("x")}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "kc"}, Data: map[string][]byte{"kubeconfig": kc}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "spinnaker", Name: "empty"}, Data: map[string][]byte{"config": {}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "spinnaker", Name: "broken"}, Data: map[string][]byte{"config": []byte(broken)}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "spinnaker", Name: "string"}, StringData: map[string]string{"config": string(kc)}},
	} {
		if _, err := admin.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	r := &Resolver{Client: admin, Namespace: "spinnaker"}
	for _, tc := range []struct {
		src           Source
		field, origin string
	}{
		{Source{KubeconfigFile: "encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker"}, FieldKubeconfigFile, "encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker"},
		{Source{KubeconfigFile: "encrypted:k8s!k:config!n:kubeconfig-t"}, FieldKubeconfigFile, "encrypted:k8s!n:kubeconfig-t!k:config"},
		{Source{KubeconfigContents: "encryptedFile:k8s!n:kc!k:kubeconfig!ns:other"}, FieldKubeconfigContents, "encryptedFile:k8s!n:kc!k:kubeconfig!ns:other"},
		{Source{KubeconfigContents: "encrypted:k8s!n:string!k:config!ns:spinnaker"}, FieldKubeconfigContents, "encrypted:k8s!n:string!k:config!ns:spinnaker"},
	} {
		got, err := r.Resolve(ctx, tc.src)
		if err != nil {
			t.Fatalf("Resolve(%+v): %v", tc.src, err)
		}
		if got.Kind != KindKubeconfig || got.Field != tc.field || got.Origin != tc.origin || string(got.Kubeconfig) != string(kc) {
			t.Fatalf("Resolve(%+v) = %v (origin %q)", tc.src, got, got.Origin)
		}
	}

	// The resolved kubeconfig works: it reaches the cluster.
	got, err := r.Resolve(ctx, Source{KubeconfigFile: "encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker", Context: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(got.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerVersion(); err != nil {
		t.Fatalf("the resolved kubeconfig does not reach the cluster: %v", err)
	}

	var errs []error
	check := func(src Source, want string, is func(error) bool) {
		t.Helper()
		_, err := r.Resolve(ctx, src)
		checkErr(t, err, want, nil)
		if err != nil && is != nil && !is(err) {
			t.Errorf("error %q: wrong kind", err)
		}
		errs = append(errs, err)
	}
	check(Source{KubeconfigFile: "encryptedFile:k8s!n:missing!k:config!ns:spinnaker"},
		"kubeconfigFile (encryptedFile:k8s!n:missing!k:config!ns:spinnaker): secret spinnaker/missing not found", apierrors.IsNotFound)
	check(Source{KubeconfigFile: "encryptedFile:k8s!n:kubeconfig-t!k:kubeconfig"},
		`kubeconfigFile (encryptedFile:k8s!n:kubeconfig-t!k:kubeconfig): secret spinnaker/kubeconfig-t has no key "kubeconfig" (it has: config, other)`, nil)
	check(Source{KubeconfigContents: "encrypted:k8s!n:empty!k:config"},
		`kubeconfigContents (encrypted:k8s!n:empty!k:config): key "config" of secret spinnaker/empty is empty`, nil)
	check(Source{KubeconfigFile: "encryptedFile:k8s!n:broken!k:config!ns:spinnaker"},
		"kubeconfigFile (encryptedFile:k8s!n:broken!k:config!ns:spinnaker): invalid kubeconfig: ", func(err error) bool { return errors.Is(err, ErrInvalidKubeconfig) })
	check(Source{KubeconfigFile: "encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker", Context: "prod"},
		`kubeconfigFile (encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker): invalid kubeconfig: context "prod" (the account's context field) is not defined`, nil)
	check(Source{KubeconfigFile: "encryptedFile:k8s!n:kubeconfig-t!k:other!ns:spinnaker"},
		"invalid kubeconfig: not a YAML or JSON document describing a kubeconfig", nil)

	nobody := c.RESTConfig()
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	r = &Resolver{Client: kubernetes.NewForConfigOrDie(nobody), Namespace: "spinnaker"}
	check(Source{KubeconfigFile: "encryptedFile:k8s!n:kubeconfig-t!k:config"},
		"kubeconfigFile (encryptedFile:k8s!n:kubeconfig-t!k:config): the control plane may not read secret spinnaker/kubeconfig-t (it needs get on secrets in namespace spinnaker)", apierrors.IsForbidden)
	r = &Resolver{Client: admin}
	check(Source{KubeconfigFile: "encryptedFile:k8s!n:kubeconfig-t!k:config"},
		"kubeconfigFile (encryptedFile:k8s!n:kubeconfig-t!k:config): the reference has no ns: and no default namespace is configured", nil)

	for _, err := range errs {
		if err != nil {
			assertNoSecret(t, "error", err.Error(), clientKey, sentinel)
		}
	}
}
