package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

type benchEnv struct {
	work            string
	agentBin        string
	controlplaneBin string
	floorBin        string // with -floor: the bench/floor binary
	floorAlone      bool   // -floor-alone: our agent stopped and our reader left out
	cluster         *testenv.Cluster
	log             *slog.Logger
}

// dir creates a directory of its own for one process under the work
// directory.
func (e *benchEnv) dir(name string) (string, error) {
	dir := filepath.Join(e.work, name)
	return dir, os.MkdirAll(dir, 0o750)
}

// controlPlane is the real controlplane binary on a fresh SQLite file.
type controlPlane struct {
	grpc, http string
	dbPath     string
	proc       *benchproc.Process
}

func (e *benchEnv) startControlPlane(name string) (*controlPlane, error) {
	grpcPort, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	// Each process gets its own directory, as on separate hosts or pods:
	// the agent watches its configuration's directory, and SQLite's writes
	// next to it would wake the agent on every commit.
	dir, err := e.dir(name + "-controlplane")
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, name+".db")
	cfg := fmt.Sprintf(`server: {address: 127.0.0.1, port: %d}
kubesvc:
  id: bench
  grpc:
    server: {address: 127.0.0.1, port: %d}
sql: {driver: sqlite, path: %q}
logging: {level: warn}
`, httpPort, grpcPort, db)
	path := filepath.Join(dir, "controlplane.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	proc, err := benchproc.Start(e.controlplaneBin, "--config", path)
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{grpc: fmt.Sprintf("127.0.0.1:%d", grpcPort), http: fmt.Sprintf("http://127.0.0.1:%d", httpPort), dbPath: db, proc: proc}
	if err := benchproc.WaitHTTP(cp.http+"/health", 30*time.Second); err != nil {
		proc.Stop()
		return nil, fmt.Errorf("control plane not up: %w", err)
	}
	return cp, nil
}

func (cp *controlPlane) stop() { cp.proc.Stop() }

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

// startAgent runs the real agent binary with one account.
func (e *benchEnv) startAgent(cp *controlPlane, account, namespace string) (*benchproc.Process, error) {
	port, err := benchproc.FreePort()
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
	dir, err := e.dir(account + "-agent")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "agent.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return benchproc.Start(e.agentBin, "--config", path)
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
