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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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
	work, err := os.MkdirTemp("", "kubesvc-bench-dyn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Println("building the agent and control plane binaries ...")
	if out, err := exec.Command("go", "build", "-o", work+"/", "./cmd/agent", "./cmd/controlplane").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
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

	grpcPort, httpPort, healthPort := freePort(), freePort(), freePort()
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
	cp, err := start(filepath.Join(work, "controlplane"), "--config", cpCfg)
	if err != nil {
		return err
	}
	defer cp.stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if err := waitHTTP(base + "/health"); err != nil {
		return err
	}
	ag, err := start(filepath.Join(work, "agent"), "--config", agCfg)
	if err != nil {
		return err
	}
	defer ag.stop()
	if err := waitFor(30*time.Second, func() bool {
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
	err = waitFor(5*time.Minute, func() bool {
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
	cpRSS, _ := cp.peakRSS()
	agRSS, _ := ag.peakRSS()
	fmt.Printf("\n%d dynamic accounts (%d clusters, one namespace each, kinds %s), one agent, SQLite:\n", n, nClusters, strings.Join(kinds, ","))
	fmt.Println("| accounts | POST+PATCH answered | all ACTIVE | all WATCHING (streaming) | control plane peak RSS | agent peak RSS |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| %d | %s | %s | %s | %.1f MiB | %.1f MiB |\n", n, posted.Round(time.Millisecond), allActive.Round(10*time.Millisecond),
		allWatching.Round(10*time.Millisecond), float64(cpRSS)/(1<<20), float64(agRSS)/(1<<20))
	return nil
}

type proc struct {
	cmd  *exec.Cmd
	done chan error
	once sync.Once
}

func start(bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *proc) peakRSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM")
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

func waitHTTP(url string) error {
	return waitFor(30*time.Second, func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
