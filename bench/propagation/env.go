package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

type benchEnv struct {
	work            string
	agentBin        string
	controlplaneBin string
	cluster         *testenv.Cluster
	log             *slog.Logger
}

// controlPlane is the real controlplane binary on a fresh SQLite file.
type controlPlane struct {
	grpc, http string
	dbPath     string
	proc       *process
}

func (e *benchEnv) startControlPlane(name string) (*controlPlane, error) {
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	db := filepath.Join(e.work, name+".db")
	cfg := fmt.Sprintf(`server: {address: 127.0.0.1, port: %d}
kubesvc:
  id: bench
  grpc:
    server: {address: 127.0.0.1, port: %d}
sql: {driver: sqlite, path: %q}
logging: {level: warn}
`, httpPort, grpcPort, db)
	path := filepath.Join(e.work, name+"-controlplane.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	proc, err := startProcess(e.controlplaneBin, "--config", path)
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{grpc: fmt.Sprintf("127.0.0.1:%d", grpcPort), http: fmt.Sprintf("http://127.0.0.1:%d", httpPort), dbPath: db, proc: proc}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(cp.http + "/health")
		if err == nil {
			resp.Body.Close()
			return cp, nil
		}
		if time.Now().After(deadline) {
			proc.stop()
			return nil, fmt.Errorf("control plane not up: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cp *controlPlane) stop() { cp.proc.stop() }

type storeSummary struct {
	account string
	objects int
}

// summaries reads the cache's counts from the database file; call it
// after stop.
func (cp *controlPlane) summaries(ctx context.Context) ([]storeSummary, error) {
	st, err := store.OpenSQLite(ctx, cp.dbPath, nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	sums, err := st.CachedAccounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]storeSummary, 0, len(sums))
	for _, s := range sums {
		out = append(out, storeSummary{account: s.Account, objects: s.Objects})
	}
	return out, nil
}

// process is a child process that dies with this one.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

func startProcess(bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peakRSS is the process's high-water resident set (VmHWM) in bytes.
func (p *process) peakRSS() (int64, error) {
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
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
}

// startAgent runs the real agent binary with one account.
func (e *benchEnv) startAgent(cp *controlPlane, account, namespace string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`agent: {id: bench-agent-%s, zoneId: bench}
clouddriver: {grpc: "%s", insecure: true}
server: {host: 127.0.0.1, port: %d}
logging: {level: warn}
kubernetes:
  accounts:
  - name: %s
    kubeconfigFile: %s
    kinds: [configMap]
    namespaces: [%s]
`, account, cp.grpc, port, account, e.cluster.KubeconfigPath, namespace)
	path := filepath.Join(e.work, account+".yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return startProcess(e.agentBin, "--config", path)
}

// waitWatching waits until the account's agent reports every stream synced.
func waitWatching(cp *controlPlane, account string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(cp.http + "/agents/kubernetes/accounts/" + account)
		if err == nil {
			var a struct{ AgentStates map[string]string }
			_ = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			ok := len(a.AgentStates) > 0
			for _, st := range a.AgentStates {
				ok = ok && st == "WATCHING"
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("account %s not watching after %s", account, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
