package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/clusterharness"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

const nAccounts = 6

// env is a running cluster: three replicas, two agent replicas serving
// the same accounts (acct-i on namespace team-i).
type env struct {
	t        *testing.T
	h        *clusterharness.Harness
	replicas []*clusterharness.Replica
	agents   []*clusterharness.Agent
	accounts []string
	// kubeconfig of the cluster, as the control plane may read it.
	kubeconfig string
}

func start(t *testing.T, srv storetest.Server, dbAddr string) *env {
	t.Helper()
	dsn := storetest.Connect(t, srv).Create(t, t)
	kube := testenv.StartForTest(t, testenv.Options{Name: "cluster"})
	ctx := context.Background()
	driver := "mysql"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "postgres"
	}
	h, err := clusterharness.New(ctx, clusterharness.Options{
		Driver: driver, DSN: dsn, DBAddr: dbAddr, Kubeconfig: kube.KubeconfigPath,
		Bin: bin, Dir: workDir(t), OperationWaitMs: 10000, AgentBackoff: 200 * time.Millisecond, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, kubeconfig: kube.KubeconfigPath}
	t.Cleanup(func() {
		h.Close()
	})
	for i := range 3 {
		r, err := h.StartReplica(ctx, fmt.Sprintf("cp-%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		e.replicas = append(e.replicas, r)
	}
	var specs []clusterharness.AccountSpec
	for i := range nAccounts {
		ns := fmt.Sprintf("team-%d", i)
		if _, err := h.Kube().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("acct-%d", i)
		e.accounts = append(e.accounts, name)
		specs = append(specs, clusterharness.AccountSpec{Name: name, Namespace: ns})
	}
	for _, id := range []string{"agent-a", "agent-b"} {
		a, err := h.StartAgent(id, specs)
		if err != nil {
			t.Fatal(err)
		}
		e.agents = append(e.agents, a)
	}
	e.eventually(60*time.Second, "every account served once", func() string {
		return e.served(e.liveIDs())
	})
	// Agent replicas starting together share the accounts, and so do the
	// replicas they are connected to.
	asg, err := clusterharness.Assignments(ctx, e.replicas[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	perAgent, perReplica := map[string]int{}, map[string]int{}
	for _, a := range asg {
		perAgent[a.AgentID]++
		perReplica[a.ClouddriverID]++
	}
	t.Logf("accounts per agent %v, per replica %v", perAgent, perReplica)
	// Together: a new session waits the assign interval (1 s) for its
	// peers before it claims free accounts. Started one after the other,
	// the agents connect well within it; on a busy machine the second
	// process may connect too late, and the first rightly takes all.
	if apart, err := e.sessionsApart(); err != nil {
		t.Fatal(err)
	} else if apart > assignInterval/2 {
		t.Logf("the agents' sessions began %s apart: not together, no even share expected", apart)
	} else if perAgent["agent-a"] != nAccounts/2 || perAgent["agent-b"] != nAccounts/2 {
		t.Errorf("accounts per agent = %v, want %d each (sessions begun %s apart)", perAgent, nAccounts/2, apart)
	}
	return e
}

// assignInterval is the replicas' (the default).
const assignInterval = time.Second

// sessionsApart is how far apart the agents' sessions began.
func (e *env) sessionsApart() (time.Duration, error) {
	var agents []clusterharness.AgentView
	if err := clusterharness.GetJSON(context.Background(), e.replicas[0].URL+"/armory/agents", &agents); err != nil {
		return 0, err
	}
	var at []time.Time
	for _, a := range agents {
		t, err := time.Parse(time.RFC3339Nano, a.LastConnection)
		if err != nil {
			return 0, fmt.Errorf("agent %s: lastConnection %q: %w", a.AgentID, a.LastConnection, err)
		}
		at = append(at, t)
	}
	if len(at) != 2 {
		return 0, fmt.Errorf("%d agents connected, want 2: %+v", len(at), agents)
	}
	return max(at[0].Sub(at[1]), at[1].Sub(at[0])), nil
}

func (e *env) liveIDs() []string {
	var out []string
	for _, r := range e.replicas {
		if r.Running() {
			out = append(out, r.ID)
		}
	}
	return out
}

func (e *env) live() []*clusterharness.Replica {
	var out []*clusterharness.Replica
	for _, r := range e.replicas {
		if r.Running() {
			out = append(out, r)
		}
	}
	return out
}

// served asks every live replica; "" when all agree every account is
// served through a live replica.
func (e *env) served(live []string) string {
	for _, r := range e.live() {
		msg, err := clusterharness.Served(context.Background(), r.URL, e.accounts, live)
		if err != nil {
			return fmt.Sprintf("%s: %v", r.ID, err)
		}
		if msg != "" {
			return r.ID + ": " + msg
		}
	}
	return ""
}

func (e *env) eventually(timeout time.Duration, what string, cond func() string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s: %s", what, timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// load changes objects and sends operations to random live replicas until
// stopped; it returns the task ids the replicas accepted.
type load struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	tasks map[string]string // task id -> replica URL that accepted it
}

func (e *env) startLoad() *load {
	l := &load{stop: make(chan struct{}), tasks: map[string]string{}}
	ctx := context.Background()
	l.wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-l.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ns := fmt.Sprintf("team-%d", n%nAccounts)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("load-%d", n%20), Namespace: ns},
				Data: map[string]string{"n": fmt.Sprint(n)}}
			cms := e.h.Kube().CoreV1().ConfigMaps(ns)
			if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
				_, _ = cms.Create(ctx, cm, metav1.CreateOptions{})
			}
			if n%7 == 0 {
				_ = cms.Delete(ctx, fmt.Sprintf("load-%d", (n/7)%20), metav1.DeleteOptions{})
			}
		}
	})
	l.wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-l.stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			live := e.live()
			if len(live) == 0 {
				continue
			}
			r := live[rand.IntN(len(live))]
			i := n % nAccounts
			body := fmt.Sprintf(`[{"deployManifest": {"account": "acct-%d", "moniker": {"app": "shop"}, "manifests": [
 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "op-%d", "namespace": "team-%d",
  "annotations": {"strategy.spinnaker.io/versioned": "false"}}, "data": {"n": "%d"}}]}}]`, i, n%10, i, n)
			var resp struct{ ID string }
			var raw any
			if err := decodeInto(body, &raw); err != nil {
				panic(err)
			}
			if _, err := clusterharness.PostJSON(ctx, r.URL+"/kubernetes/ops", raw, &resp); err == nil && resp.ID != "" {
				l.mu.Lock()
				l.tasks[resp.ID] = r.URL
				l.mu.Unlock()
			}
		}
	})
	return l
}

func (l *load) halt() map[string]string {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tasks
}

// settle checks what must hold once the dust settles: every task finished
// (succeeded, or failed with a message), and every account's cache equal
// to the cluster, object by object, on every live replica.
func (e *env) settle(tasks map[string]string) {
	e.t.Helper()
	ctx := context.Background()
	var succeeded, failed int
	for id := range tasks {
		var tk struct {
			Status struct {
				Completed, Failed bool
				Status            string
			}
		}
		e.eventually(60*time.Second, "task "+id+" finished", func() string {
			r := e.live()[0]
			if err := clusterharness.GetJSON(ctx, r.URL+"/task/"+url.PathEscape(id), &tk); err != nil {
				return err.Error()
			}
			if !tk.Status.Completed {
				return "still running"
			}
			return ""
		})
		if tk.Status.Failed {
			failed++
			if strings.TrimSpace(tk.Status.Status) == "" {
				e.t.Errorf("task %s failed without a message", id)
			}
			e.t.Logf("task %s failed: %s", id, tk.Status.Status)
		} else {
			succeeded++
		}
	}
	e.t.Logf("%d tasks: %d succeeded, %d failed with a message", len(tasks), succeeded, failed)
	if succeeded == 0 {
		e.t.Errorf("no task succeeded")
	}
	for i, acct := range e.accounts {
		ns := fmt.Sprintf("team-%d", i)
		e.eventually(30*time.Second, "cache of "+acct+" equals the cluster", func() string {
			for _, r := range e.live() {
				diff, err := e.h.CompareConfigMaps(ctx, r.URL, acct, ns)
				if err != nil {
					return err.Error()
				}
				if diff != "" {
					return r.ID + ": " + diff
				}
			}
			return ""
		})
	}
}

// probe changes one object in every account and waits until each change is
// visible through the read API of a live replica.
func (e *env) probe(timeout time.Duration) {
	e.t.Helper()
	ctx := context.Background()
	for i, acct := range e.accounts {
		ns := fmt.Sprintf("team-%d", i)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}, Data: map[string]string{"at": time.Now().String()}}
		cms := e.h.Kube().CoreV1().ConfigMaps(ns)
		got, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			got, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		}
		if err != nil {
			e.t.Fatal(err)
		}
		e.eventually(timeout, "probe of "+acct+" visible", func() string {
			var obj struct{ ResourceVersion string }
			q := url.Values{"namespace": {ns}, "minResourceVersion": {got.ResourceVersion}, "waitMs": {"2000"}}
			r := e.live()[0]
			if err := clusterharness.GetJSON(ctx, r.URL+"/cache/objects/"+acct+"/ConfigMap/probe?"+q.Encode(), &obj); err != nil {
				return err.Error()
			}
			return ""
		})
	}
}

func (e *env) busiestReplica() *clusterharness.Replica {
	asg, err := clusterharness.Assignments(context.Background(), e.live()[0].URL)
	if err != nil {
		e.t.Fatal(err)
	}
	count := map[string]int{}
	for _, a := range asg {
		count[a.ClouddriverID]++
	}
	best := e.live()[0]
	for _, r := range e.live() {
		if count[r.ID] > count[best.ID] {
			best = r
		}
	}
	e.t.Logf("replica %s holds %d of %d accounts", best.ID, count[best.ID], len(e.accounts))
	return best
}

func (e *env) busiestAgent() *clusterharness.Agent {
	asg, err := clusterharness.Assignments(context.Background(), e.live()[0].URL)
	if err != nil {
		e.t.Fatal(err)
	}
	count := map[string]int{}
	for _, a := range asg {
		count[a.AgentID]++
	}
	best := e.agents[0]
	for _, a := range e.agents {
		if a.Running() && count[a.ID] > count[best.ID] {
			best = a
		}
	}
	e.t.Logf("agent %s caches %d of %d accounts", best.ID, count[best.ID], len(e.accounts))
	return best
}

// A replica killed with SIGKILL while operations run and objects change:
// every account is served again, no operation vanishes, and the cache ends
// equal to the cluster. Then the same with an agent replica.
func testKills(t *testing.T, srv storetest.Server, dbAddr string) {
	e := start(t, srv, dbAddr)
	e.checkPeers(3)
	e.checkAccountReads()
	l := e.startLoad()
	time.Sleep(2 * time.Second)
	victim := e.busiestReplica()
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	e.eventually(30*time.Second, "accounts served again after the replica's death", func() string { return e.served(e.liveIDs()) })
	e.probe(30 * time.Second)
	t.Logf("replica %s killed: every account served again and a change in each visible after %s", victim.ID, time.Since(killed).Round(time.Millisecond))
	e.opsSucceed()
	time.Sleep(2 * time.Second)

	agent := e.busiestAgent()
	if err := agent.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = time.Now()
	e.eventually(30*time.Second, "accounts served again after the agent's death", func() string {
		if msg := e.served(e.liveIDs()); msg != "" {
			return msg
		}
		asg, err := clusterharness.Assignments(context.Background(), e.live()[0].URL)
		if err != nil {
			return err.Error()
		}
		for acct, a := range asg {
			if a.AgentID == agent.ID {
				return acct + " still cached by the dead agent"
			}
		}
		return ""
	})
	e.probe(30 * time.Second)
	t.Logf("agent %s killed: every account served again and a change in each visible after %s", agent.ID, time.Since(killed).Round(time.Millisecond))
	e.opsSucceed()
	e.settle(l.halt())
}

// opsSucceed: once the cluster has settled after a failure, an operation
// on every account through every live replica succeeds.
func (e *env) opsSucceed() {
	e.t.Helper()
	ctx := context.Background()
	for _, r := range e.live() {
		for i, acct := range e.accounts {
			body := []map[string]any{{"deployManifest": map[string]any{"account": acct, "moniker": map[string]any{"app": "shop"},
				"manifests": []map[string]any{{"apiVersion": "v1", "kind": "ConfigMap",
					"metadata": map[string]any{"name": "after-" + r.ID, "namespace": fmt.Sprintf("team-%d", i),
						"annotations": map[string]string{"strategy.spinnaker.io/versioned": "false"}},
					"data": map[string]string{"at": time.Now().String()}}}}}}
			var started struct{ ID string }
			if _, err := clusterharness.PostJSON(ctx, r.URL+"/kubernetes/ops", body, &started); err != nil {
				e.t.Fatalf("%s: %v", r.ID, err)
			}
			var tk struct {
				State  string
				Status struct{ Status string }
			}
			if err := clusterharness.GetJSON(ctx, r.URL+"/task/"+started.ID+"?waitMs=30000", &tk); err != nil || tk.State != "SUCCEEDED" {
				e.t.Errorf("operation on %s through %s after the failure: %s %s %v", acct, r.ID, tk.State, tk.Status.Status, err)
			}
		}
	}
}

// checkAccountReads: any replica answers for any account, those whose
// agent is connected elsewhere by forwarding to that replica. The
// endpoints reaching an agent directly are for replicas only.
func (e *env) checkAccountReads() {
	e.t.Helper()
	for _, path := range []string{"/armory/agent/operations", "/armory/agent/agent-a/disconnect"} {
		code, err := clusterharness.PostJSON(context.Background(), e.replicas[0].URL+path, map[string]string{}, nil)
		if code != http.StatusUnauthorized {
			e.t.Errorf("POST %s without the peer secret: %d %v, want 401", path, code, err)
		}
	}
	for _, r := range e.live() {
		for _, acct := range e.accounts {
			var view struct {
				Name   string
				Agents []string
			}
			if err := clusterharness.GetJSON(context.Background(), r.URL+"/agents/kubernetes/accounts/"+acct, &view); err != nil {
				e.t.Errorf("%s: %v", r.ID, err)
				continue
			}
			if view.Name != acct || len(view.Agents) == 0 {
				e.t.Errorf("%s: account %s = %+v", r.ID, acct, view)
			}
		}
	}
}

// checkPeers: every replica lists the others, found through EndpointSlices.
func (e *env) checkPeers(n int) {
	e.t.Helper()
	e.eventually(20*time.Second, "replicas discover each other", func() string {
		for _, r := range e.live() {
			var peers []clusterharness.ReplicaView
			if err := clusterharness.GetJSON(context.Background(), r.URL+"/armory/clouddrivers", &peers); err != nil {
				return err.Error()
			}
			var ids []string
			for _, p := range peers {
				if p.Ready && strings.HasPrefix(p.BaseURL, "http://10.") {
					ids = append(ids, p.ID)
				}
			}
			if len(ids) != n {
				return fmt.Sprintf("%s sees %v", r.ID, ids)
			}
		}
		return ""
	})
}

func TestReplicaAndAgentKillsMySQL(t *testing.T) { testKills(t, storetest.MySQL(), "") }

func TestReplicaAndAgentKillsPostgres(t *testing.T) {
	testKills(t, storetest.Postgres(), "127.0.0.1:5432")
}

// A replica cut off the network (its veth down: agents, peers, database
// and API server lose it at once) behaves like a death; restored, it
// rejoins the cluster and the cache still equals the cluster.
func TestReplicaNetworkCut(t *testing.T) {
	e := start(t, storetest.Postgres(), "127.0.0.1:5432")
	l := e.startLoad()
	time.Sleep(2 * time.Second)
	victim := e.busiestReplica()
	if err := victim.NS.Cut(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	var others []string
	for _, r := range e.replicas {
		if r != victim {
			others = append(others, r.ID)
		}
	}
	e.eventually(45*time.Second, "accounts served through the other replicas", func() string {
		for _, r := range e.replicas {
			if r == victim {
				continue
			}
			msg, err := clusterharness.Served(context.Background(), r.URL, e.accounts, others)
			if err != nil || msg != "" {
				return fmt.Sprintf("%s: %v %s", r.ID, err, msg)
			}
		}
		return ""
	})
	t.Logf("replica %s cut off: accounts served elsewhere after %s", victim.ID, time.Since(cut).Round(time.Millisecond))
	if err := victim.NS.Heal(); err != nil {
		t.Fatal(err)
	}
	if !victim.Running() {
		t.Fatalf("the cut replica exited")
	}
	e.checkPeers(3)
	e.eventually(30*time.Second, "the restored replica sees every account served", func() string {
		msg, err := clusterharness.Served(context.Background(), victim.URL, e.accounts, e.liveIDs())
		if err != nil {
			return err.Error()
		}
		return msg
	})
	e.probe(30 * time.Second)
	tasks := l.halt()
	e.settle(tasks)
	if !slices.Contains(e.liveIDs(), victim.ID) {
		t.Errorf("restored replica %s not live", victim.ID)
	}
}

func decodeInto(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// workDir is the harness's directory: removed after a passing test, kept
// (and named) after a failing one for its process logs.
func workDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "kubesvc-cluster-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("KUBESVC_KEEP_LOGS") != "" {
			t.Logf("process logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}
