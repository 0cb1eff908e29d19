package agent

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// clusterSession runs one agent session for acct against the control plane
// double until stop is called.
type clusterSession struct {
	agent *Agent
	d     *controlPlaneDouble
	stop  func()
}

func startClusterSession(t *testing.T, acct Account, welcome *kubesvcv1.Welcome) *clusterSession {
	t.Helper()
	return startClusterSessionWith(t, acct, welcome, nil)
}

// startClusterSessionWith is startClusterSession with prepare run on the
// agent before its session starts.
func startClusterSessionWith(t *testing.T, acct Account, welcome *kubesvcv1.Welcome, prepare func(*Agent)) *clusterSession {
	t.Helper()
	return startClusterSessionOn(t, startControlPlaneDouble(t, doubleOptions{welcome: welcome, autoAck: true}), acct, prepare)
}

// runClusterSession starts a session of agent a, which keeps what it
// learnt across its sessions, against a new control plane double; it
// ends with the test.
func runClusterSession(t *testing.T, a *Agent, welcome *kubesvcv1.Welcome) *clusterSession {
	t.Helper()
	d := startControlPlaneDouble(t, doubleOptions{welcome: welcome, autoAck: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.runSession(ctx, d.dial(t))
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &clusterSession{agent: a, d: d, stop: stop}
}

// startClusterSessionOn is startClusterSessionWith on the double d.
func startClusterSessionOn(t *testing.T, d *controlPlaneDouble, acct Account, prepare func(*Agent)) *clusterSession {
	t.Helper()
	a, err := New(Config{Target: d.addr, ID: "agent", ZoneID: "zone", Log: testLogger(t), Accounts: []Account{acct}})
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.runSession(ctx, d.dial(t))
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("runSession did not end within 10s of the cancel")
		}
	}
	t.Cleanup(stop)
	return &clusterSession{agent: a, d: d, stop: stop}
}

// describe names a message for order checks: "SYNCING", "begin",
// "listed:NAME", "end", "upserted:NAME", "bookmark", ...
func describe(m *kubesvcv1.AgentMessage) []string {
	if st := m.GetAccountStatus(); st != nil {
		return []string{st.GetState().String()}
	}
	var out []string
	for _, c := range m.GetChanges().GetChanges() {
		switch {
		case c.GetSyncBegin() != nil:
			out = append(out, "begin")
		case c.GetSyncEnd() != nil:
			out = append(out, "end")
		case c.GetListed() != nil:
			out = append(out, "listed:"+c.GetListed().GetName())
		case c.GetUpserted() != nil:
			out = append(out, "upserted:"+c.GetUpserted().GetName())
		case c.GetDeleted() != nil:
			out = append(out, "deleted:"+c.GetDeleted().GetName())
		case c.GetBookmark() != nil:
			out = append(out, "bookmark")
		case c.GetStreamRemoved() != nil:
			out = append(out, "removed")
		}
	}
	return out
}

// until reads messages until one described as want arrives; it returns
// the descriptions up to and including it, and the SyncEnd version seen.
func (s *clusterSession) until(t *testing.T, want string) (seen []string, syncEndRV string) {
	t.Helper()
	for {
		m := s.d.tryNext()
		if m == nil {
			t.Fatalf("no %s from the agent within 10s; received %v", want, seen)
		}
		for _, c := range m.GetChanges().GetChanges() {
			if e := c.GetSyncEnd(); e != nil {
				syncEndRV = e.GetResourceVersion()
			}
		}
		for _, desc := range describe(m) {
			seen = append(seen, desc)
			if desc == want {
				if st := m.GetAccountStatus(); st != nil && st.GetState() == kubesvcv1.AccountStatus_WATCHING && st.GetStreams() != 1 {
					t.Errorf("WATCHING with %d streams, want 1", st.GetStreams())
				}
				return seen, syncEndRV
			}
		}
	}
}

// One account watching Namespaces on a real API server, through the real
// session (manageAccounts, accountRunner, streamRunner, sendLoop) to the
// control plane double: statuses and changes arrive in the documented
// order, and Welcome resume points are used only when younger than
// MaxResumableAge.
func TestSessionAgainstAPIServer(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	createNS := func(name string) {
		t.Helper()
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	acct := Account{Name: "main", KubeconfigFile: cluster.KubeconfigPath, Kinds: []string{"namespace"}, MaxResumableAge: time.Hour}
	nsKey := &kubesvcv1.StreamKey{Account: "main", Resource: &kubesvcv1.Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"}}
	resumeAt := func(rv string, age time.Duration) *kubesvcv1.Welcome {
		return &kubesvcv1.Welcome{SessionId: "s", ResumePoints: []*kubesvcv1.ResumePoint{
			{Stream: nsKey, ResourceVersion: rv, UpdatedAtMs: time.Now().Add(-age).UnixMilli()},
		}}
	}

	var listRV string
	t.Run("first session lists, then reports WATCHING, then watches", func(t *testing.T) {
		s := startClusterSession(t, acct, nil)
		seen, rv := s.until(t, "WATCHING")
		listRV = rv
		if len(seen) < 4 || seen[0] != "SYNCING" || seen[1] != "begin" || seen[len(seen)-2] != "end" || seen[len(seen)-1] != "WATCHING" {
			t.Fatalf("order: %v, want SYNCING begin listed... end WATCHING", seen)
		}
		listed := seen[2 : len(seen)-2]
		for _, ns := range []string{"default", "kube-system", "kube-public"} {
			if !slices.Contains(listed, "listed:"+ns) {
				t.Errorf("namespace %s not listed: %v", ns, listed)
			}
		}
		for _, d := range listed {
			if !strings.HasPrefix(d, "listed:") {
				t.Errorf("between SyncBegin and SyncEnd: %s", d)
			}
		}
		if rv == "" {
			t.Error("SyncEnd without a resource version")
		}
		createNS("after-first-list")
		s.until(t, "upserted:after-first-list")
		if r, l := s.agent.stats.Resumes.Load(), s.agent.stats.Relists.Load(); r != 0 || l != 1 {
			t.Errorf("resumes %d relists %d, want 0 1", r, l)
		}
	})
	if listRV == "" {
		t.Fatal("no list resource version to resume from")
	}

	t.Run("fresh resume point: no list, the watch replays from it", func(t *testing.T) {
		s := startClusterSession(t, acct, resumeAt(listRV, time.Minute))
		seen, _ := s.until(t, "WATCHING")
		// Created after listRV: the resumed watch delivers it, before or
		// after the account reports WATCHING (the watch runs as the
		// account's loop reports it started).
		const replayed = "upserted:after-first-list"
		if !slices.Contains(seen, replayed) {
			after, _ := s.until(t, replayed)
			seen = append(seen, after...)
		}
		if seen[0] != "SYNCING" || slices.ContainsFunc(seen, func(d string) bool { return d == "begin" || strings.HasPrefix(d, "listed:") }) {
			t.Errorf("resumed session: %v, want SYNCING, WATCHING and %s without a list", seen, replayed)
		}
		if r, l := s.agent.stats.Resumes.Load(), s.agent.stats.Relists.Load(); r != 1 || l != 0 {
			t.Errorf("resumes %d relists %d, want 1 0", r, l)
		}
	})

	for _, c := range []struct {
		name   string
		maxAge time.Duration
		age    time.Duration
	}{
		{"resume point older than MaxResumableAge: relist", time.Hour, 2 * time.Hour},
		// A point stamped ahead of the agent's clock is as fresh as it gets.
		{"MaxResumableAge 0: relist despite a fresh point", 0, -time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := acct
			a.MaxResumableAge = c.maxAge
			s := startClusterSession(t, a, resumeAt(listRV, c.age))
			seen, _ := s.until(t, "WATCHING")
			if len(seen) < 4 || seen[0] != "SYNCING" || seen[1] != "begin" || seen[len(seen)-2] != "end" {
				t.Errorf("order: %v, want SYNCING begin listed... end WATCHING", seen)
			}
			if !slices.Contains(seen, "listed:after-first-list") {
				t.Errorf("the relist misses a namespace: %v", seen)
			}
			if r, l := s.agent.stats.Resumes.Load(), s.agent.stats.Relists.Load(); r != 0 || l != 1 {
				t.Errorf("resumes %d relists %d, want 0 1", r, l)
			}
		})
	}

	// A reconnection reuses the previous session's discovery; a stream
	// the control plane holds that it lacks (a kind found since) is not
	// removed on its word: a fresh discovery finds it, and it resumes.
	t.Run("stale cached discovery: a known stream is kept and resumed", func(t *testing.T) {
		a := acct
		a.Kinds = []string{"namespace", "configmap"}
		cmKey := &kubesvcv1.StreamKey{Account: "main", Resource: &kubesvcv1.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
		welcome := resumeAt(listRV, time.Minute)
		welcome.ResumePoints = append(welcome.ResumePoints, &kubesvcv1.ResumePoint{Stream: cmKey, ResourceVersion: listRV, UpdatedAtMs: time.Now().UnixMilli()})
		s := startClusterSessionWith(t, a, welcome, func(ag *Agent) {
			cfg, err := restConfig(a, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ag.facts.probed(a, cfg, nil, &kubesvcv1.AccountInfo{})
			ag.facts.discovered(a, []*kubesvcv1.StreamKey{nsKey}) // no ConfigMaps
		})
		deadline := time.Now().Add(15 * time.Second)
		for s.agent.stats.Resumes.Load() < 2 && time.Now().Before(deadline) {
			select {
			case m := <-s.d.received:
				if slices.Contains(describe(m), "removed") {
					t.Fatalf("a stream the stale discovery lacks was removed: %v", m)
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
		if r, l := s.agent.stats.Resumes.Load(), s.agent.stats.Relists.Load(); r != 2 || l != 0 {
			t.Errorf("resumes %d relists %d, want 2 0 (namespaces from the cache, then configmaps once discovered)", r, l)
		}
	})
}
