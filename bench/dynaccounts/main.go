// Command dynaccounts measures Dynamic Accounts at scale: N accounts (one
// namespace each, spread over a few real clusters) are POSTed and PATCHed
// ACTIVE through the REST API of the real controlplane binary, served by
// one real agent process; it reports the time until every account is
// ACTIVE and until every account's agent reports all its streams synced
// (WATCHING), and both processes' peak RSS. Run it with `make bench`.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func main() {
	accounts := flag.Int("accounts", 1000, "dynamic accounts to create")
	clusters := flag.Int("clusters", 2, "real clusters the accounts point at")
	kinds := flag.String("kinds", "ConfigMap,Deployment", "kinds each account watches")
	flag.Parse()
	if err := run(*accounts, *clusters, strings.Split(*kinds, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "dynaccounts:", err)
		os.Exit(1)
	}
}

func run(n, nClusters int, kinds []string) error {
	ctx := context.Background()
	work, err := benchproc.Binaries("kubesvc-bench-dyn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Printf("starting %d Kubernetes clusters and %d namespaces ...\n", nClusters, n)
	var cls []*testenv.Cluster
	for i := range nClusters {
		c, err := testenv.Start(ctx, testenv.Options{Name: fmt.Sprintf("dyn-%d", i)})
		if err != nil {
			return err
		}
		defer c.Stop()
		cls = append(cls, c)
	}
	for i := range n {
		cs, err := kubernetes.NewForConfig(cls[i%nClusters].RESTConfig())
		if err != nil {
			return err
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%04d", i)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return err
		}
	}

	var ports [3]int
	for i := range ports {
		if ports[i], err = benchproc.FreePort(); err != nil {
			return err
		}
	}
	grpcPort, httpPort, healthPort := ports[0], ports[1], ports[2]
	cpCfg := filepath.Join(work, "controlplane.yml")
	os.WriteFile(cpCfg, []byte(fmt.Sprintf(`server: {address: 127.0.0.1, port: %d}
kubesvc:
  id: bench
  grpc:
    server: {address: 127.0.0.1, port: %d, maxInboundMessageSize: 16MiB}
  dynamicAccounts: {enabled: true}
sql: {driver: sqlite, path: %q}
logging: {level: warn}
`, httpPort, grpcPort, filepath.Join(work, "cp.db"))), 0o600)
	agCfg := filepath.Join(work, "agent.yml")
	os.WriteFile(agCfg, []byte(fmt.Sprintf(`agent: {id: bench-agent, zoneId: bench}
clouddriver: {grpc: "127.0.0.1:%d", insecure: true}
server: {host: 127.0.0.1, port: %d}
logging: {level: warn}
kubernetes: {accounts: []}
`, grpcPort, healthPort)), 0o600)
	cp, err := benchproc.Start(filepath.Join(work, "controlplane"), "--config", cpCfg)
	if err != nil {
		return err
	}
	defer cp.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if err := benchproc.WaitHTTP(base+"/health", 30*time.Second); err != nil {
		return err
	}
	ag, err := benchproc.Start(filepath.Join(work, "agent"), "--config", agCfg)
	if err != nil {
		return err
	}
	defer ag.Stop()
	if err := benchproc.WaitFor(30*time.Second, func() bool {
		var agents []any
		return getJSON(base+"/armory/agents", &agents) == nil && len(agents) == 1
	}); err != nil {
		return fmt.Errorf("agent did not connect: %w", err)
	}

	defs := make([]map[string]any, n)
	names := make([]map[string]string, n)
	for i := range n {
		name := fmt.Sprintf("acct-%04d", i)
		defs[i] = map[string]any{"name": name, "kubeconfigFile": cls[i%nClusters].KubeconfigPath,
			"namespaces": []string{fmt.Sprintf("team-%04d", i)}, "kinds": kinds}
		names[i] = map[string]string{"name": name, "state": "ACTIVE"}
	}
	fmt.Printf("POST + PATCH %d accounts ...\n", n)
	start := time.Now()
	if code, body := send("POST", base+"/armory/accounts/dynamic", defs); code != http.StatusAccepted {
		return fmt.Errorf("POST: %d %s", code, body)
	}
	if code, body := send("PATCH", base+"/armory/accounts", names); code != http.StatusAccepted {
		return fmt.Errorf("PATCH: %d %s", code, body)
	}
	posted := time.Since(start)
	var allActive, allWatching time.Duration
	err = benchproc.WaitFor(5*time.Minute, func() bool {
		var page struct {
			Items []struct{ Status, ErrorMessage string }
			Total int
		}
		if getJSON(fmt.Sprintf("%s/armory/accounts?limit=%d", base, n+10), &page) != nil {
			return false
		}
		active := 0
		for _, it := range page.Items {
			if it.Status == "ACTIVE" {
				active++
			}
		}
		if active == n && allActive == 0 {
			allActive = time.Since(start)
		}
		if allActive == 0 {
			return false
		}
		// Streaming: every account's agent reports WATCHING.
		var agents []struct{ Accounts []string }
		if getJSON(base+"/armory/agents", &agents) != nil || len(agents) != 1 || len(agents[0].Accounts) != n {
			return false
		}
		for i := 0; i < n; i += max(1, n/50) { // sample 50 accounts per poll, all at the end
			var a struct{ AgentStates map[string]string }
			if getJSON(fmt.Sprintf("%s/agents/kubernetes/accounts/acct-%04d", base, i), &a) != nil || a.AgentStates["bench-agent"] != "WATCHING" {
				return false
			}
		}
		for i := range n {
			var a struct{ AgentStates map[string]string }
			if getJSON(fmt.Sprintf("%s/agents/kubernetes/accounts/acct-%04d", base, i), &a) != nil || a.AgentStates["bench-agent"] != "WATCHING" {
				return false
			}
		}
		allWatching = time.Since(start)
		return true
	})
	if err != nil {
		return fmt.Errorf("accounts did not all become ACTIVE and WATCHING: %w", err)
	}
	cpRSS, _ := cp.PeakRSS()
	agRSS, _ := ag.PeakRSS()
	fmt.Printf("\n%d dynamic accounts (%d clusters, one namespace each, kinds %s), one agent, SQLite:\n", n, nClusters, strings.Join(kinds, ","))
	fmt.Println("| accounts | POST+PATCH answered | all ACTIVE | all WATCHING (streaming) | control plane peak RSS | agent peak RSS |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| %d | %s | %s | %s | %.1f MiB | %.1f MiB |\n", n, posted.Round(time.Millisecond), allActive.Round(10*time.Millisecond),
		allWatching.Round(10*time.Millisecond), float64(cpRSS)/(1<<20), float64(agRSS)/(1<<20))
	return nil
}

func send(method, url string, body any) (int, string) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func getJSON(url string, into any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}
