package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/testenv"
	"github.com/kubesvc/kubesvc/internal/testlog"
)

// tokenRotation is a ServiceAccount "agent" in namespace "rot" allowed to
// read it, whose token is written into a kubeconfig file.
type tokenRotation struct {
	t       *testing.T
	cluster *testenv.Cluster
	cs      *kubernetes.Clientset
	path    string
	tokens  []string
}

func newTokenRotation(t *testing.T, cluster *testenv.Cluster) *tokenRotation {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmaps", Namespace: "rot"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := cs.RbacV1().Roles("rot").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-view", Namespace: "rot"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "agent", Namespace: "rot"}},
	}
	if _, err := cs.RbacV1().RoleBindings("rot").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := &tokenRotation{t: t, cluster: cluster, cs: cs, path: filepath.Join(t.TempDir(), "rot.kubeconfig")}
	r.rotate()
	// RBAC reaches the authorizer's cache moments later.
	cfg, err := clientcmd.BuildConfigFromFlags("", r.path)
	if err != nil {
		t.Fatal(err)
	}
	sacs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, err := sacs.CoreV1().ConfigMaps("rot").List(ctx, metav1.ListOptions{}); err != nil; _, err = sacs.CoreV1().ConfigMaps("rot").List(ctx, metav1.ListOptions{}) {
		if time.Now().After(deadline) {
			t.Fatalf("the service account cannot list configmaps: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// rotate recreates the ServiceAccount (revoking its tokens) and writes a
// new token into the kubeconfig file by an atomic rename.
func (r *tokenRotation) rotate() {
	r.t.Helper()
	ctx := context.Background()
	sas := r.cs.CoreV1().ServiceAccounts("rot")
	if err := sas.Delete(ctx, "agent", metav1.DeleteOptions{}); err == nil {
		// The old token is refused once the account is gone.
		deadline := time.Now().Add(10 * time.Second)
		for _, err := sas.Get(ctx, "agent", metav1.GetOptions{}); err == nil && time.Now().Before(deadline); _, err = sas.Get(ctx, "agent", metav1.GetOptions{}) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if n := len(r.tokens); n > 0 {
		// The API server caches authentications for a few seconds.
		cfg := r.cluster.RESTConfig()
		cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = nil, nil
		cfg.BearerToken = r.tokens[n-1]
		old, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			r.t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for _, err := old.CoreV1().ConfigMaps("rot").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err); _, err = old.CoreV1().ConfigMaps("rot").List(ctx, metav1.ListOptions{}) {
			if time.Now().After(deadline) {
				r.t.Fatalf("the old token still works 30s after its service account was deleted: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if _, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "agent"}}, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := sas.CreateToken(ctx, "agent", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.tokens = append(r.tokens, tr.Status.Token)
	admin, err := clientcmd.LoadFromFile(r.cluster.KubeconfigPath)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	for _, c := range admin.Clusters {
		cfg.Clusters["c"] = c
	}
	cfg.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "agent"}
	cfg.CurrentContext = "c"
	tmp := r.path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		r.t.Fatal(err)
	}
}

func (r *tokenRotation) createConfigMap(name string) {
	r.t.Helper()
	if _, err := r.cs.CoreV1().ConfigMaps("rot").Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

// A kubeconfig file's token is revoked and a new one written into the
// file: the clients built from the account's configuration before use the
// new one (a watch from the position reached included), and an agent
// session resumes its streams with it, without a list and without a
// restart. The token never reaches the log.
func TestKubeconfigTokenRotation(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	rot := newTokenRotation(t, cluster)
	acct := Account{Name: "rot", KubeconfigFile: rot.path, Kinds: []string{"configmap"}, Namespaces: []string{"rot"}, MaxResumableAge: time.Hour}
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	t.Run("clients built before the rotation", func(t *testing.T) {
		cms := rotConfigMaps(t, acct, log)
		list, err := cms.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rot.rotate()
		rot.createConfigMap("after-rotation")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			t.Fatalf("watch with the clients built before the rotation: %v", err)
		}
		defer w.Stop()
		ev := <-w.ResultChan()
		if m, ok := ev.Object.(metav1.Object); !ok || m.GetName() != "after-rotation" {
			t.Fatalf("watch event %v %v, want after-rotation", ev.Type, ev.Object)
		}
	})

	t.Run("agent session resumes with the new token", func(t *testing.T) {
		a, err := New(Config{Target: "unused:1", ID: "agent", ZoneID: "zone", Log: log, Accounts: []Account{acct}})
		if err != nil {
			t.Fatal(err)
		}
		// The sessions below share one agent: the second reuses what
		// the first learnt (its client configuration).
		run := func(welcome *kubesvcv1.Welcome) *clusterSession { return runClusterSession(t, a, welcome) }
		first := run(nil)
		_, rv := first.until(t, "WATCHING")
		if rv == "" {
			t.Fatal("no SyncEnd resource version")
		}
		rot.createConfigMap("before-rotation")
		first.until(t, "upserted:before-rotation")
		first.stop()

		rot.rotate()
		rot.createConfigMap("after-second-rotation")
		key := &kubesvcv1.StreamKey{Account: "rot", Namespace: "rot", Resource: &kubesvcv1.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
		second := run(&kubesvcv1.Welcome{SessionId: "s2", ResumePoints: []*kubesvcv1.ResumePoint{{Stream: key, ResourceVersion: rv, UpdatedAtMs: time.Now().UnixMilli()}}})
		second.until(t, "upserted:after-second-rotation")
		rot.createConfigMap("later")
		second.until(t, "upserted:later")
		if r, l := a.stats.Resumes.Load(), a.stats.Relists.Load(); r != 1 || l != 1 {
			t.Errorf("resumes %d relists %d, want 1 1 (the second session resumes, no list)", r, l)
		}
	})
	if n := strings.Count(logs.String(), "kubeconfig file changed; the account's clients use its credentials from now on"); n < 2 {
		t.Errorf("%d reloads of the kubeconfig file logged, want one per rotation:\n%s", n, logs.String())
	}
	for _, tok := range rot.tokens {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("a token is in the log:\n%s", logs.String())
		}
	}
}

// rotConfigMaps is the ConfigMaps of namespace rot through a client built
// from acct's configuration as the agent builds it (restConfig).
func rotConfigMaps(t *testing.T, acct Account, log *slog.Logger) dynamic.ResourceInterface {
	t.Helper()
	cfg, err := restConfig(acct, log)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("rot")
}
