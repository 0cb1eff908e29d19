package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/testenv"
	"github.com/kubesvc/kubesvc/internal/testnet"
)

// kubeconfigVia writes a copy of the cluster's admin kubeconfig with
// another server address and, if as is set, impersonating that user.
func kubeconfigVia(t *testing.T, c *testenv.Cluster, server, as string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range cfg.Clusters {
		if server != "" {
			cl.Server = server
		}
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = as
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// nextStatus returns the next AccountStatus the agent sends within d (nil
// if none), passing the changes it sends meanwhile to changes.
func nextStatus(d *controlPlaneDouble, within time.Duration, changes func(string)) *kubesvcv1.AccountStatus {
	deadline := time.After(within)
	for {
		select {
		case m := <-d.received:
			if st := m.GetAccountStatus(); st != nil {
				return st
			}
			for _, desc := range describe(m) {
				if changes != nil {
					changes(desc)
				}
			}
		case <-deadline:
			return nil
		}
	}
}

// waitStatus waits up to within for a status for which ok holds.
func waitStatus(t *testing.T, d *controlPlaneDouble, within time.Duration, what string, ok func(*kubesvcv1.AccountStatus) bool) *kubesvcv1.AccountStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	var seen []string
	for {
		st := nextStatus(d, time.Until(deadline), nil)
		if st == nil {
			t.Fatalf("no status %s within %s; statuses seen: %v", what, within, seen)
		}
		if ok(st) {
			return st
		}
		seen = append(seen, fmt.Sprintf("%s %q", st.GetState(), st.GetMessage()))
	}
}

// An API server lost while the account runs: once its streams have failed
// for the grace, the account is in ERROR, saying since when the API server
// is unreachable, in the agent's states (/health, metrics) too; when it is
// back, WATCHING again without a message.
func TestAccountReportsAnUnreachableAPIServer(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	proxy := testnet.Start(t, strings.TrimPrefix(cluster.Host, "https://"))
	acct := Account{Name: "main", KubeconfigFile: kubeconfigVia(t, cluster, "https://"+proxy.Addr(), ""), Kinds: []string{"namespace", "configmap"}}
	s := startClusterSession(t, acct, nil)
	waitStatus(t, s.d, 20*time.Second, "WATCHING", func(st *kubesvcv1.AccountStatus) bool {
		return st.GetState() == kubesvcv1.AccountStatus_WATCHING && st.GetMessage() == ""
	})

	lost := time.Now()
	proxy.Cut()
	st := waitStatus(t, s.d, 30*time.Second, "ERROR", func(st *kubesvcv1.AccountStatus) bool {
		return st.GetState() == kubesvcv1.AccountStatus_ERROR
	})
	if since := time.Since(lost); since < unreachableGrace {
		t.Errorf("ERROR %s after the API server was lost, before the %s grace", since, unreachableGrace)
	}
	if msg := st.GetMessage(); !strings.Contains(msg, "API server unreachable since ") || !strings.Contains(msg, "(2 of 2 streams)") || !strings.Contains(msg, "connection refused") {
		t.Errorf("ERROR message %q, want the API server unreachable since a time, with the error", msg)
	}
	if n := s.agent.states.counts(); n["ERROR"] != 1 || n["WATCHING"] != 0 {
		t.Errorf("agent states %v, want the account in ERROR", n)
	}

	proxy.Restore(t)
	waitStatus(t, s.d, 60*time.Second, "WATCHING again", func(st *kubesvcv1.AccountStatus) bool {
		return st.GetState() == kubesvcv1.AccountStatus_WATCHING && st.GetMessage() == ""
	})
	if n := s.agent.states.counts(); n["WATCHING"] != 1 {
		t.Errorf("agent states %v, want the account WATCHING", n)
	}
}

// A stream that becomes forbidden is emptied in the cache (an empty sync:
// SyncBegin and SyncEnd), once: its retries send nothing, and count as
// refused lists rather than relists. Every stream forbidden: ERROR.
func TestForbiddenStreamIsSweptOnce(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("team-a").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "p1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles("team-a").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "read"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings("team-a").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "read"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	acct := Account{Name: "main", KubeconfigFile: kubeconfigVia(t, cluster, "", "alice"), Namespaces: []string{"team-a"}, Kinds: []string{"configmap"}}
	// The API server authorizes from caches of the RBAC objects, which
	// follow their creation and deletion a moment later: wait until alice
	// is allowed, and below until she is refused, as the agent will be.
	asAlice := cluster.RESTConfig()
	asAlice.Impersonate = rest.ImpersonationConfig{UserName: "alice"}
	alice, err := kubernetes.NewForConfig(asAlice)
	if err != nil {
		t.Fatal(err)
	}
	aliceLists := func() error {
		_, err := alice.CoreV1().ConfigMaps("team-a").List(ctx, metav1.ListOptions{})
		return err
	}
	waitFor(t, "alice to be allowed to list the ConfigMaps of team-a", func() bool { return aliceLists() == nil })

	s := startClusterSession(t, acct, nil)
	if seen, _ := s.until(t, "WATCHING"); !slices.Contains(seen, "listed:p1") {
		t.Fatalf("first session: %v, want p1 listed", seen)
	}
	s.stop()

	if err := cs.RbacV1().RoleBindings("team-a").Delete(ctx, "read", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice to be refused the ConfigMaps of team-a", func() bool { return apierrors.IsForbidden(aliceLists()) })
	s = startClusterSession(t, acct, nil)
	var changes []string
	st := nextStatus(s.d, 20*time.Second, func(d string) { changes = append(changes, d) })
	for st != nil && st.GetState() == kubesvcv1.AccountStatus_SYNCING {
		st = nextStatus(s.d, 20*time.Second, func(d string) { changes = append(changes, d) })
	}
	if st == nil {
		t.Fatal("no status after SYNCING")
	}
	if st.GetState() != kubesvcv1.AccountStatus_ERROR || !strings.Contains(st.GetMessage(), "1 of 1 streams cannot be served") || !strings.Contains(st.GetMessage(), "forbidden") {
		t.Errorf("status %v, want ERROR naming the forbidden stream", st)
	}
	// Let a few retries happen (backoff from 1 s).
	for deadline := time.Now().Add(20 * time.Second); s.agent.stats.ListsRefused.Load() < 3 && time.Now().Before(deadline); {
		if nextStatus(s.d, 200*time.Millisecond, func(d string) { changes = append(changes, d) }) != nil {
			t.Error("a status sent again although nothing changed")
		}
	}
	if !slices.Equal(changes, []string{"begin", "end"}) {
		t.Errorf("changes %v, want one empty sync (begin, end)", changes)
	}
	if n := s.agent.stats.Relists.Load(); n != 0 {
		t.Errorf("relists %d, want 0 (no list completed)", n)
	}

	// A control-plane reconnection of the same agent, the account
	// unchanged: the refusal and the status are not logged at warning
	// level again.
	s.stop()
	warns := &warnLog{}
	s.agent.log = slog.New(warns)
	d2 := startControlPlaneDouble(t, doubleOptions{autoAck: true})
	ctx2, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = s.agent.runSession(ctx2, d2.dial(t))
	}()
	defer func() { cancel(); <-done }()
	refused := s.agent.stats.ListsRefused.Load()
	waitStatus(t, d2, 20*time.Second, "ERROR again", func(st *kubesvcv1.AccountStatus) bool {
		return st.GetState() == kubesvcv1.AccountStatus_ERROR
	})
	waitFor(t, "the list refused again", func() bool { return s.agent.stats.ListsRefused.Load() > refused })
	if got := warns.messages(); len(got) > 0 {
		t.Errorf("warnings logged again after a reconnection: %v", got)
	}
}

// warnLog records the messages of warnings.
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (*warnLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *warnLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.mu.Lock()
		l.msgs = append(l.msgs, r.Message)
		l.mu.Unlock()
	}
	return nil
}
func (l *warnLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *warnLog) WithGroup(string) slog.Handler      { return l }

func (l *warnLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// CRDs deleted at once: the account's status (and its log line) goes out
// at most once a second, bounded, the last one always.
func TestAccountStatusCoalesced(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 20
	var kinds []string
	for i := range n {
		kind := fmt.Sprintf("Gadget%02d", i)
		plural := strings.ToLower(kind) + "s"
		kinds = append(kinds, kind)
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": plural + ".example.com"},
			"spec": map[string]any{
				"group": "example.com", "scope": "Namespaced",
				"names": map[string]any{"plural": plural, "kind": kind},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
			},
		}}
		if _, err := dyn.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the CRDs to be discoverable", func() bool {
		rs, err := dc.ServerResourcesForGroupVersion("example.com/v1")
		return err == nil && len(rs.APIResources) == n
	})
	acct := Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: append([]string{"namespace"}, kinds...)}
	s := startClusterSession(t, acct, nil)
	waitStatus(t, s.d, 60*time.Second, "WATCHING with every kind", func(st *kubesvcv1.AccountStatus) bool {
		return st.GetState() == kubesvcv1.AccountStatus_WATCHING && st.GetMessage() == "" && st.GetStreams() == n+1
	})

	if err := dyn.Resource(crdResource).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	var statuses []*kubesvcv1.AccountStatus
	var at []time.Time
	for {
		st := nextStatus(s.d, 8*time.Second, nil)
		if st == nil {
			break
		}
		statuses, at = append(statuses, st), append(at, time.Now())
	}
	if len(statuses) == 0 {
		t.Fatal("no status after the CRDs were deleted")
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < statusEvery/2 {
			t.Errorf("statuses %d and %d %s apart (%d statuses in all)", i-1, i, gap, len(statuses))
			break
		}
	}
	for _, st := range statuses {
		if len(st.GetMessage()) > 2000 {
			t.Errorf("status message of %d bytes", len(st.GetMessage()))
		}
	}
	last := statuses[len(statuses)-1]
	if last.GetState() != kubesvcv1.AccountStatus_WATCHING || last.GetStreams() != 1 || !strings.Contains(last.GetMessage(), "kinds not served by the API server") ||
		!strings.Contains(last.GetMessage(), "Gadget00, Gadget01, Gadget02, Gadget03, Gadget04 and 15 more") {
		t.Errorf("last status %s %d streams %q, want WATCHING with one stream, naming the kinds not served", last.GetState(), last.GetStreams(), last.GetMessage())
	}
}
