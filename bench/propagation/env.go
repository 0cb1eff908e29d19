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

	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

type benchEnv struct {
	work     string
	agentBin string
	cluster  *testenv.Cluster
	log      *slog.Logger
}

// controlPlane runs in this process on a fresh SQLite file.
type controlPlane struct {
	grpc, http string
	st         store.Store
	stop       func()
}

type storeSummary struct {
	account string
	objects int
}

func (cp *controlPlane) summaries(ctx context.Context) ([]storeSummary, error) {
	sums, err := cp.st.CachedAccounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]storeSummary, 0, len(sums))
	for _, s := range sums {
		out = append(out, storeSummary{account: s.Account, objects: s.Objects})
	}
	return out, nil
}

func (e *benchEnv) startControlPlane(name string) (*controlPlane, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.OpenSQLite(ctx, filepath.Join(e.work, name+".db"), e.log)
	if err != nil {
		cancel()
		return nil, err
	}
	srv, err := controlplane.New(controlplane.Config{ID: "bench", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Log: e.log}, st)
	if err != nil {
		cancel()
		st.Close()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	g, h, err := srv.Addrs(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &controlPlane{grpc: g.String(), http: "http://" + h.String(), st: st, stop: func() {
		cancel()
		<-done
		st.Close()
	}}, nil
}

// agentProcess is the real agent binary.
type agentProcess struct {
	cmd  *exec.Cmd
	done chan error
}

func (e *benchEnv) startAgent(cp *controlPlane, account, namespace string) (*agentProcess, error) {
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
	cmd := exec.Command(e.agentBin, "--config", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &agentProcess{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func (p *agentProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peakRSS is the process's high-water resident set (VmHWM) in bytes.
func (p *agentProcess) peakRSS() (int64, error) {
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
