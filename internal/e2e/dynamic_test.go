package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubesvc/kubesvc/internal/accountview"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testenv"
	"github.com/kubesvc/kubesvc/internal/testlog"
)

func send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// do sends req with the default client and returns the status and body.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// accountState reads GET /armory/accounts/{name}.
func accountState(t *testing.T, cp *controlPlane, name string) (accountview.Account, int) {
	t.Helper()
	var a accountview.Account
	code, _, err := getJSON(cp.http, "/armory/accounts/"+name, nil, &a)
	if err != nil {
		t.Fatal(err)
	}
	return a, code
}

func waitState(t *testing.T, cp *controlPlane, name, want string) accountview.Account {
	t.Helper()
	var a accountview.Account
	eventually(t, wait, func() string {
		var code int
		a, code = accountState(t, cp, name)
		if code == http.StatusOK && a.Status == want {
			return ""
		}
		return fmt.Sprintf("account %s: %d %s (error %q), want %s", name, code, a.Status, a.ErrorMessage, want)
	})
	return a
}

func fastDynamic() *dynaccounts.Config {
	return &dynaccounts.Config{RetryFrequency: 200 * time.Millisecond, MaxRetries: 3, CommandTimeout: 10 * time.Second, OrphanGrace: 100 * time.Millisecond}
}

// The documented flow: POST stores INACTIVE; PATCH ACTIVE migrates to an
// agent (zone recorded, cluster facts stored, objects streamed); PATCH
// INACTIVE stops it; DELETE removes it.
func TestDynamicAccountLifecycle(t *testing.T) {
	t.Parallel()
	dynamicLifecycle(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db")})
}

// The same flow, with streaming into the cache, on the other backends.
func TestDynamicAccountLifecycleMySQL(t *testing.T) {
	t.Parallel()
	driver, dsn := backendDB(t, storetest.MySQL())
	dynamicLifecycle(t, cpOptions{driver: driver, dsn: dsn})
}

func TestDynamicAccountLifecyclePostgres(t *testing.T) {
	t.Parallel()
	driver, dsn := backendDB(t, storetest.Postgres())
	dynamicLifecycle(t, cpOptions{driver: driver, dsn: dsn})
}

func dynamicLifecycle(t *testing.T, o cpOptions) {
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	createConfigMap(t, cs, "default", "dynamic-visible")
	o.dynamic = fastDynamic()
	cp := startControlPlane(t, o)
	startAgentAs(t, "agent-a", "zone-a", cp.grpc)

	code, body := send(t, "POST", cp.http+"/armory/accounts", fmt.Sprintf(`[{"name":"dyn1","kubeconfigFile":%q}]`, cluster.KubeconfigPath))
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	if a, _ := accountState(t, cp, "dyn1"); a.Status != dynaccounts.Inactive {
		t.Fatalf("after POST: %s, want INACTIVE", a.Status)
	}
	if code, body := send(t, "PATCH", cp.http+"/armory/accounts", `[{"name":"dyn1","state":"ACTIVE"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH ACTIVE: %d %s", code, body)
	}
	a := waitState(t, cp, "dyn1", dynaccounts.Active)
	if a.ZoneID != "zone-a" || a.KubeHost != cluster.Host || a.KubeVersion != testenv.KubernetesVersion || a.CertFingerprint == "" || a.AgentID != "agent-a" {
		t.Errorf("active account: %+v", a)
	}
	present(t, cp, q("account", "dyn1", "kind", "ConfigMap", "name", "dynamic-visible"), "default/dynamic-visible")
	// The Dynamic Accounts view counts the agents serving it, as the
	// agents' view does.
	eventually(t, wait, func() string {
		if a, _ := accountState(t, cp, "dyn1"); a.Connections != 1 || !slices.Equal(a.Agents, []string{"agent-a"}) {
			return fmt.Sprintf("GET /armory/accounts/dyn1: connections %d, agents %v; want 1, [agent-a]", a.Connections, a.Agents)
		}
		return ""
	})
	var served map[string]any
	if code, body, _ := getJSON(cp.http, "/agents/kubernetes/accounts/dyn1", nil, &served); code != 200 || served["status"] != "ACTIVE" {
		t.Errorf("GET /agents/kubernetes/accounts/dyn1: %d %s", code, body)
	}
	eventually(t, wait, func() string {
		if code, body := rawGet(t, cp.http+"/metrics"); code != http.StatusOK || !strings.Contains(body, `kubesvc_dynamic_accounts{state="ACTIVE"} 1`) {
			return "metrics: " + grepLines(body, "kubesvc_dynamic_accounts")
		}
		return ""
	})

	// PUT on an ACTIVE account reaches the agent at once: narrowing it to
	// Namespaces drops the ConfigMaps from the cache.
	put := fmt.Sprintf(`{"name":"dyn1","kubeconfigFile":%q,"kinds":["Namespace"]}`, cluster.KubeconfigPath)
	if code, body := send(t, "PUT", cp.http+"/armory/accounts/dynamic", put); code != http.StatusAccepted {
		t.Fatalf("PUT: %d %s", code, body)
	}
	present(t, cp, q("account", "dyn1", "kind", "ConfigMap"))
	present(t, cp, q("account", "dyn1", "kind", "Namespace", "name", "default"), "/default")
	waitState(t, cp, "dyn1", dynaccounts.Active)

	if code, body := send(t, "PATCH", cp.http+"/armory/accounts", `[{"name":"dyn1","state":"INACTIVE"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH INACTIVE: %d %s", code, body)
	}
	waitState(t, cp, "dyn1", dynaccounts.Inactive)
	present(t, cp, q("account", "dyn1"))

	if code, body := send(t, "DELETE", cp.http+"/armory/accounts/dyn1", ""); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	eventually(t, wait, func() string {
		if _, code := accountState(t, cp, "dyn1"); code != http.StatusNotFound {
			return fmt.Sprintf("GET after DELETE: %d", code)
		}
		return ""
	})
}

// proxy forwards a loopback port to target once enabled; before that,
// nothing listens there (connection refused), like a cluster that is down.
type proxy struct {
	addr   string
	target string
	mu     sync.Mutex
	l      net.Listener
	wg     sync.WaitGroup
}

func (p *proxy) up(t *testing.T) {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() {
				defer c.Close()
				u, err := net.Dial("tcp", p.target)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(u, c); done <- struct{}{} }()
				go func() { io.Copy(c, u); done <- struct{}{} }()
				<-done
			})
		}
	})
	t.Cleanup(func() { l.Close() })
}

// An account whose cluster cannot be reached goes FAILED with the reason,
// is retried maxRetries times at retryFrequency and then left alone; a
// PATCH ACTIVE resets the count, and once the cluster answers it becomes
// ACTIVE.
func TestDynamicAccountFailsRetriesAndRecovers(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	p := &proxy{addr: freeAddr(t), target: strings.TrimPrefix(cluster.Host, "https://")}
	kubeconfig, err := os.ReadFile(cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	viaProxy := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(viaProxy, bytes.ReplaceAll(kubeconfig, []byte(cluster.Host), []byte("https://"+p.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fastDynamic()
	cfg.MaxRetries = 2
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), dynamic: cfg})
	startAgentAs(t, "agent-f", "zone-f", cp.grpc)

	send(t, "POST", cp.http+"/armory/accounts", fmt.Sprintf(`[{"name":"flaky","kubeconfigFile":%q}]`, viaProxy))
	send(t, "PATCH", cp.http+"/armory/accounts", `[{"name":"flaky","state":"ACTIVE"}]`)
	var a accountview.Account
	eventually(t, wait, func() string {
		a, _ = accountState(t, cp, "flaky")
		if a.Status == dynaccounts.Failed && a.RetryCount == cfg.MaxRetries+1 {
			return ""
		}
		return fmt.Sprintf("state %s, retryCount %d, want FAILED after %d attempts", a.Status, a.RetryCount, cfg.MaxRetries+1)
	})
	if !strings.Contains(a.ErrorMessage, "agent-f") || !strings.Contains(a.ErrorMessage, "connection refused") {
		t.Errorf("error message does not say which agent failed and why: %q", a.ErrorMessage)
	}
	// No further attempts once maxRetries is spent (ten retry periods).
	time.Sleep(10 * cfg.RetryFrequency)
	if a, _ = accountState(t, cp, "flaky"); a.Status != dynaccounts.Failed || a.RetryCount != cfg.MaxRetries+1 {
		t.Fatalf("after the retries: %s with %d attempts", a.Status, a.RetryCount)
	}
	p.up(t)
	send(t, "PATCH", cp.http+"/armory/accounts", `[{"name":"flaky","state":"ACTIVE"}]`)
	a = waitState(t, cp, "flaky", dynaccounts.Active)
	if a.RetryCount != 0 {
		t.Errorf("retryCount after PATCH ACTIVE and success: %d, want 0", a.RetryCount)
	}
}

// With a zoneId only that zone's agents are asked; when the serving agent
// dies the account is ORPHANED, and it comes back by itself when an agent
// of the zone returns.
func TestDynamicAccountZonesAndOrphans(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), dynamic: fastDynamic()})
	startAgentAs(t, "agent-east", "east", cp.grpc)
	west := startAgentAs(t, "agent-west", "west", cp.grpc)

	send(t, "POST", cp.http+"/armory/accounts", fmt.Sprintf(`[{"name":"pinned","zoneId":"west","kubeconfigFile":%q}]`, cluster.KubeconfigPath))
	send(t, "PATCH", cp.http+"/armory/accounts", `[{"name":"pinned","state":"ACTIVE"}]`)
	a := waitState(t, cp, "pinned", dynaccounts.Active)
	if a.AgentID != "agent-west" || a.ZoneID != "west" {
		t.Fatalf("pinned account served by %s in zone %s, want agent-west in west", a.AgentID, a.ZoneID)
	}

	west.stopNow(t)
	waitState(t, cp, "pinned", dynaccounts.Orphaned)
	startAgentAs(t, "agent-west-2", "west", cp.grpc)
	a = waitState(t, cp, "pinned", dynaccounts.Active)
	if a.AgentID != "agent-west-2" {
		t.Errorf("recovered account served by %s, want agent-west-2", a.AgentID)
	}

	// A zone with no agent: FAILED with a message naming the zone.
	send(t, "POST", cp.http+"/armory/accounts", fmt.Sprintf(`[{"name":"nowhere","zoneId":"south","kubeconfigFile":%q}]`, cluster.KubeconfigPath))
	send(t, "PATCH", cp.http+"/armory/accounts", `[{"name":"nowhere","state":"ACTIVE"}]`)
	a = waitState(t, cp, "nowhere", dynaccounts.Failed)
	if !strings.Contains(a.ErrorMessage, `"south"`) {
		t.Errorf("error %q does not name the zone", a.ErrorMessage)
	}
}

// Bad bodies get a 4xx naming the problem and change nothing; 409 lists
// the accounts that exist while storing the others.
func TestDynamicAccountsValidation(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), dynamic: fastDynamic()})
	url := cp.http + "/armory/accounts"
	send(t, "POST", url, `[{"name":"exists"}]`)
	for _, c := range []struct{ method, path, body, mention string }{
		{"POST", "", ``, "empty"},
		{"POST", "", `{"name":"x"}`, "array"},
		{"POST", "", `[]`, "empty"},
		{"POST", "", `[{"zoneId":"z"}]`, "[0].name"},
		{"POST", "", `[{"name":"ok"},{"name":"bad","colour":"red"}]`, "[1].colour"},
		{"POST", "", `[{"name":"a"},{"name":"a"}]`, "[1].name"},
		{"POST", "", `[{"name":"n","kubeconfigFile":"encryptedFile:k8s!k:config"}]`, "kubeconfigFile"},
		{"POST", "", `[{"name":"n","kubeconfigContents":"apiVersion: v1\nkind: Config\nclusters: []\n"}]`, "kubeconfigContents"},
		{"PATCH", "", `[{"name":"exists","state":"SIDEWAYS"}]`, "[0].state"},
		{"PATCH", "", `"exists"`, "array"},
		{"DELETE", "", `{"name":"exists"}`, "array"},
		{"DELETE", "", `[""]`, "[0]"},
		{"PUT", "/dynamic", `{"kinds":[]}`, "name"},
		{"GET", "?page=0", ``, "page"},
	} {
		code, body := send(t, c.method, url+c.path, c.body)
		if code != http.StatusBadRequest || !strings.Contains(body, c.mention) {
			t.Errorf("%s %s %q: %d %s, want 400 naming %s", c.method, c.path, c.body, code, body, c.mention)
		}
	}
	var list struct{ Total int }
	if _, _, err := getJSON(cp.http, "/armory/accounts", nil, &list); err != nil || list.Total != 1 {
		t.Errorf("bad requests changed the accounts: total %d (%v)", list.Total, err)
	}
	code, body := send(t, "POST", url, `[{"name":"exists"},{"name":"fresh"}]`)
	var conflict []map[string]any
	_ = json.Unmarshal([]byte(body), &conflict)
	if code != http.StatusConflict || len(conflict) != 1 || conflict[0]["name"] != "exists" {
		t.Errorf("POST with an existing account: %d %s, want 409 listing it", code, body)
	}
	if _, code := accountState(t, cp, "fresh"); code != http.StatusOK {
		t.Errorf("the valid account of a 409 request was not stored: %d", code)
	}
	if code, body := send(t, "PATCH", url, `[{"name":"ghost","state":"ACTIVE"}]`); code != http.StatusNotFound || !strings.Contains(body, "ghost") {
		t.Errorf("PATCH of an unknown account: %d %s", code, body)
	}

	off := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "off.db"), dynamic: fastDynamic(), dynamicOff: true})
	for _, m := range []string{"POST", "PATCH", "DELETE"} {
		if code, body := send(t, m, off.http+"/armory/accounts", `[{"name":"x"}]`); code != http.StatusNotImplemented || !strings.Contains(body, "kubesvc.dynamicAccounts.enabled") {
			t.Errorf("%s with the feature disabled: %d %s, want 501", m, code, body)
		}
	}
}

// A kubeconfig given inline is sealed at rest and one given as a Secret
// reference is resolved through the API: neither appears in plain text in
// the database or the logs, and both accounts become ACTIVE.
func TestDynamicAccountCredentialsNeverInPlainText(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	kubeconfig, err := os.ReadFile(cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kubeconfigs", Namespace: "spinnaker"}, Data: map[string][]byte{"prod": kubeconfig}}
	mustCreateNamespace(t, cs, "spinnaker")
	if _, err := cs.CoreV1().Secrets("spinnaker").Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dbDir := t.TempDir()
	logs := &testlog.Buffer{}
	key := bytes.Repeat([]byte{7}, 32)
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(dbDir, "cp.db"), dynamic: fastDynamic(), secrets: cluster, sealKey: key, logs: logs})
	startAgentAs(t, "agent-c", "zone-c", cp.grpc)

	inline, _ := json.Marshal([]map[string]any{
		{"name": "inline", "kubeconfigContents": string(kubeconfig)},
		{"name": "by-ref", "kubeconfigFile": "encryptedFile:k8s!n:kubeconfigs!k:prod!ns:spinnaker"},
	})
	if code, body := send(t, "POST", cp.http+"/armory/accounts", string(inline)); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	send(t, "PATCH", cp.http+"/armory/accounts", `[{"name":"inline","state":"ACTIVE"},{"name":"by-ref","state":"ACTIVE"}]`)
	waitState(t, cp, "inline", dynaccounts.Active)
	waitState(t, cp, "by-ref", dynaccounts.Active)

	_, one, _ := getJSON(cp.http, "/armory/accounts/inline", nil, nil)
	_, list, _ := getJSON(cp.http, "/armory/accounts", nil, nil)
	// The client key is the secret part of the kubeconfig.
	var kc struct {
		Users []struct {
			User struct {
				Key string `json:"client-key-data"`
			}
		}
	}
	if err := yaml.Unmarshal(kubeconfig, &kc); err != nil || len(kc.Users) == 0 || kc.Users[0].User.Key == "" {
		t.Fatalf("cannot find the client key in the kubeconfig: %v", err)
	}
	clientKey := kc.Users[0].User.Key
	for where, data := range map[string]string{
		"the database files": string(dirBytes(t, dbDir)), "the logs": logs.String(), "GET account": string(one), "GET accounts": string(list),
	} {
		if strings.Contains(data, clientKey) || strings.Contains(data, clientKey[:40]) {
			t.Errorf("the kubeconfig's client key appears in %s", where)
		}
	}

	// Without a sealing key, inline contents are refused with the reason.
	noKey := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "nokey.db"), dynamic: fastDynamic()})
	code, body := send(t, "POST", noKey.http+"/armory/accounts", string(inline))
	if code != http.StatusBadRequest || !strings.Contains(body, "kubeconfigContents") || !strings.Contains(body, "encryptionKey") {
		t.Errorf("inline kubeconfig without a key: %d %s, want 400 naming the field and the key setting", code, body)
	}
}

// A control plane that stops mid-migration leaves a claimed row; the next
// one (same database) finishes the job.
func TestDynamicAccountMigrationSurvivesControlPlaneRestart(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	db := filepath.Join(t.TempDir(), "cp.db")
	addr := freeAddr(t)
	cp := startControlPlane(t, cpOptions{dbPath: db, grpcAddr: addr, dynamic: fastDynamic(), id: "replica-1"})
	send(t, "POST", cp.http+"/armory/accounts", fmt.Sprintf(`[{"name":"midway","kubeconfigFile":%q}]`, cluster.KubeconfigPath))
	// Freeze the row as a replica leaves it when it dies after claiming:
	// ACTIVATING, owned by replica-1.
	a, err := cp.st.GetAccount(context.Background(), "midway")
	if err != nil {
		t.Fatal(err)
	}
	a.State, a.Owner = dynaccounts.Activating, "replica-1"
	if _, err := cp.st.UpdateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	cp.stop(t)

	cp2 := startControlPlane(t, cpOptions{dbPath: db, grpcAddr: addr, dynamic: fastDynamic(), id: "replica-1"})
	startAgentAs(t, "agent-r", "zone-r", addr)
	waitState(t, cp2, "midway", dynaccounts.Active)
}

// An account activated through a replica that does not hold the agent is
// not declared ORPHANED while that replica's view of the other replicas'
// agents catches up.
func TestDynamicAccountActivatedThroughAnotherReplicaIsNotOrphaned(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "dyn-replicas"})
	db := filepath.Join(t.TempDir(), "cluster.db")
	dyn := fastDynamic()
	dyn.OrphanGrace = 2 * time.Second
	logs := &testlog.Buffer{}
	start := func(id string) *controlPlane {
		addr := freeAddr(t)
		return startControlPlane(t, cpOptions{dbPath: db, id: id, dynamic: dyn, httpAddr: addr, baseURL: "http://" + addr, logs: logs})
	}
	holder, entry := start("cp-holder"), start("cp-entry")
	startAgentAs(t, "agent-dyn", "zone-a", holder.grpc)
	// Both replicas past their start-up grace.
	time.Sleep(dyn.OrphanGrace + 500*time.Millisecond)

	if code, body := send(t, "POST", entry.http+"/armory/accounts", fmt.Sprintf(`[{"name":"far","kubeconfigFile":%q}]`, cluster.KubeconfigPath)); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body := send(t, "PATCH", entry.http+"/armory/accounts", `[{"name":"far","state":"ACTIVE"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	waitState(t, entry, "far", dynaccounts.Active)
	// Past the grace, and in between (the replicas log every change of
	// state): ACTIVE throughout.
	time.Sleep(dyn.OrphanGrace + time.Second)
	for _, cp := range []*controlPlane{holder, entry} {
		if a, _ := accountState(t, cp, "far"); a.Status != dynaccounts.Active {
			t.Errorf("account far: %s (%q)", a.Status, a.ErrorMessage)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "account=far") && strings.Contains(line, "to=ORPHANED") {
			t.Errorf("the account was declared orphaned: %s", line)
		}
	}
}

// staleView is the assign interval of the replicas of the tests below: how
// long each replica's view of the other replicas' agents may lag. Longer
// than the default (1 s), as under load or on a slow database, so that a
// decision resting on that view instead of the database shows.
const staleView = 3 * time.Second

// dynamicReplicas starts control-plane replicas sharing one database (db's
// driver and dsn, or its dbPath), each reaching the others over REST
// (account commands are forwarded to the replica holding the agent), all
// logging into logs.
func dynamicReplicas(t *testing.T, db cpOptions, dyn *dynaccounts.Config, logs *testlog.Buffer, ids ...string) []*controlPlane {
	t.Helper()
	var out []*controlPlane
	for _, id := range ids {
		addr := freeAddr(t)
		o := db
		o.id, o.dynamic, o.httpAddr, o.baseURL, o.logs, o.assignInterval = id, dyn, addr, "http://"+addr, logs, staleView
		out = append(out, startControlPlane(t, o))
	}
	return out
}

// sqliteDB is a SQLite file for dynamicReplicas.
func sqliteDB(t *testing.T) cpOptions {
	return cpOptions{dbPath: filepath.Join(t.TempDir(), "cluster.db")}
}

// serverDB is a database on srv for dynamicReplicas.
func serverDB(t *testing.T, srv storetest.Server) cpOptions {
	driver, dsn := backendDB(t, srv)
	return cpOptions{driver: driver, dsn: dsn}
}

// transitions returns the state changes of account the replicas logged in
// logs.
func transitions(logs string, account, to string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `msg="dynamic account"`) && strings.Contains(line, "account="+account+" ") && strings.Contains(line, "to="+to+" ") {
			out = append(out, line)
		}
	}
	return out
}

// An agent that reconnects again and again, each time to the other
// replica (a TCP load balancer in front of two replicas), gets its dynamic
// account back every time. The replica the agent reconnects to sees it at
// once; the other sees it only at its next refresh: it must not judge the
// activation, which either may claim, on that view. The account is never
// FAILED, and each success leaves the retry count at 0.
func TestDynamicAccountFollowsAgentReconnectingToEachReplicaInTurn(t *testing.T) {
	t.Parallel()
	followsReconnectingAgent(t, sqliteDB(t))
}

// The same on PostgreSQL (the trial that found it) and MariaDB.
func TestDynamicAccountFollowsAgentReconnectingToEachReplicaInTurnPostgres(t *testing.T) {
	t.Parallel()
	followsReconnectingAgent(t, serverDB(t, storetest.Postgres()))
}

func TestDynamicAccountFollowsAgentReconnectingToEachReplicaInTurnMySQL(t *testing.T) {
	t.Parallel()
	followsReconnectingAgent(t, serverDB(t, storetest.MySQL()))
}

func followsReconnectingAgent(t *testing.T, db cpOptions) {
	cluster := testenv.StartForTest(t, testenv.Options{Name: "dyn-alternate"})
	logs := &testlog.Buffer{}
	cps := dynamicReplicas(t, db, fastDynamic(), logs, "cp-a", "cp-b")
	ag := startAgentAs(t, "trial-agent", "trial-agent", cps[0].grpc)
	// Both replicas know the agent before the account is activated: what
	// is under test is its reconnections.
	eventually(t, wait, func() string {
		var agents []struct{ AgentID string }
		if code, body, err := getJSON(cps[1].http, "/armory/agents", nil, &agents); err != nil || code != http.StatusOK || len(agents) != 1 {
			return fmt.Sprintf("cp-b: GET /armory/agents: %d %s %v", code, body, err)
		}
		return ""
	})
	def := fmt.Sprintf(`[{"name":"dyn1","zoneId":"trial-agent","kubeconfigFile":%q}]`, cluster.KubeconfigPath)
	if code, body := send(t, "POST", cps[1].http+"/armory/accounts", def); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body := send(t, "PATCH", cps[1].http+"/armory/accounts", `[{"name":"dyn1","state":"ACTIVE"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	active := func(cycle int) {
		t.Helper()
		eventually(t, wait, func() string {
			for _, cp := range cps {
				a, _ := accountState(t, cp, "dyn1")
				if a.Status == dynaccounts.Failed && a.RetryCount > fastDynamic().MaxRetries {
					t.Fatalf("cycle %d: dyn1 FAILED for good (retryCount %d) with its agent connected: %q", cycle, a.RetryCount, a.ErrorMessage)
				}
				if a.Status != dynaccounts.Active || a.AgentID != "trial-agent" || a.RetryCount != 0 {
					return fmt.Sprintf("cycle %d: dyn1 %s on %q, retryCount %d (%q), want ACTIVE on trial-agent, retryCount 0", cycle, a.Status, a.AgentID, a.RetryCount, a.ErrorMessage)
				}
				// And the replica's view shows the agent serving it, as it
				// does between two reconnections of an agent that stays
				// a while (the trial's 30 s).
				if !slices.Equal(a.Agents, []string{"trial-agent"}) {
					return fmt.Sprintf("cycle %d: %s/armory/accounts/dyn1: agents %v, want [trial-agent]", cycle, cp.http, a.Agents)
				}
			}
			return ""
		})
	}
	active(0)
	for cycle := 1; cycle <= 6; cycle++ {
		ag.stopNow(t)
		waitState(t, cps[0], "dyn1", dynaccounts.Orphaned)
		ag = startAgentAs(t, "trial-agent", "trial-agent", cps[cycle%2].grpc)
		active(cycle)
	}
	for _, line := range transitions(logs.String(), "dyn1", dynaccounts.Failed) {
		t.Errorf("an activation failed while the agent was connected: %s", line)
	}
}

// When the agent serving an account leaves, the account becomes ORPHANED
// and stays so: a replica whose view still shows the agent (it refreshes
// every staleView) must not declare the account ACTIVE again, which would
// leave the row ACTIVE with no agent if the replicas stopped then. When an
// agent of its zone comes back, to either replica, it is ACTIVE again.
func TestDynamicAccountStaysOrphanedWhenItsAgentLeaves(t *testing.T) {
	t.Parallel()
	staysOrphaned(t, sqliteDB(t))
}

// The same on MariaDB (the trial's shutdown that left the row ACTIVE) and
// PostgreSQL.
func TestDynamicAccountStaysOrphanedWhenItsAgentLeavesMySQL(t *testing.T) {
	t.Parallel()
	staysOrphaned(t, serverDB(t, storetest.MySQL()))
}

func TestDynamicAccountStaysOrphanedWhenItsAgentLeavesPostgres(t *testing.T) {
	t.Parallel()
	staysOrphaned(t, serverDB(t, storetest.Postgres()))
}

func staysOrphaned(t *testing.T, db cpOptions) {
	cluster := testenv.StartForTest(t, testenv.Options{Name: "dyn-leaves"})
	logs := &testlog.Buffer{}
	dyn := fastDynamic()
	cps := dynamicReplicas(t, db, dyn, logs, "cp-a", "cp-b")
	ag := startAgentAs(t, "leaving-agent", "leaving", cps[0].grpc)
	def := fmt.Sprintf(`[{"name":"dyn2","zoneId":"leaving","kubeconfigFile":%q}]`, cluster.KubeconfigPath)
	send(t, "POST", cps[0].http+"/armory/accounts", def)
	send(t, "PATCH", cps[0].http+"/armory/accounts", `[{"name":"dyn2","state":"ACTIVE"}]`)
	waitState(t, cps[0], "dyn2", dynaccounts.Active)
	// cp-b's view shows the agent serving the account.
	eventually(t, wait, func() string {
		if a, _ := accountState(t, cps[1], "dyn2"); !slices.Equal(a.Agents, []string{"leaving-agent"}) {
			return fmt.Sprintf("cp-b: dyn2 served by %v, want [leaving-agent]", a.Agents)
		}
		return ""
	})
	mark := len(logs.String())
	ag.stopNow(t)
	waitState(t, cps[1], "dyn2", dynaccounts.Orphaned)
	// Past the time both views take to forget the agent, and the orphan
	// grace: never ACTIVE again meanwhile (the replicas log every change).
	time.Sleep(2*staleView + dyn.OrphanGrace)
	for _, line := range transitions(logs.String()[mark:], "dyn2", dynaccounts.Active) {
		t.Errorf("the account was declared ACTIVE with no agent connected: %s", line)
	}
	for _, cp := range cps {
		if a, _ := accountState(t, cp, "dyn2"); a.Status != dynaccounts.Orphaned || a.Connections != 0 {
			t.Errorf("%s: dyn2 %s with %d connections, want ORPHANED with none", cp.http, a.Status, a.Connections)
		}
	}
	if row, err := cps[0].st.GetAccount(context.Background(), "dyn2"); err != nil || row.State != dynaccounts.Orphaned {
		t.Errorf("kubesvc_accounts row: %s (%v), want ORPHANED", row.State, err)
	}
	startAgentAs(t, "returning-agent", "leaving", cps[1].grpc)
	eventually(t, wait, func() string {
		for _, cp := range cps {
			if a, _ := accountState(t, cp, "dyn2"); a.Status != dynaccounts.Active || a.AgentID != "returning-agent" || a.RetryCount != 0 {
				return fmt.Sprintf("dyn2 %s on %q, retryCount %d (%q), want ACTIVE on returning-agent", a.Status, a.AgentID, a.RetryCount, a.ErrorMessage)
			}
		}
		return ""
	})
}
