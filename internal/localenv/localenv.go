package localenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/operations"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// Defaults of Config, relative to the working directory for paths.
const (
	DefaultKubeconfigPath = ".local/kubeconfig"
	DefaultDatabasePath   = ".local/controlplane.db"
	DefaultGRPCAddr       = "127.0.0.1:9091"
	DefaultHTTPAddr       = "127.0.0.1:7002"
	DefaultAgentHealth    = "127.0.0.1:8082"
	// AccountName is the name of the account the local agent serves.
	AccountName = "local"
)

// Config configures Run. Zero values take the defaults above.
type Config struct {
	// KubeconfigPath is where the cluster's admin kubeconfig is copied.
	KubeconfigPath string
	// DatabasePath is the control plane's SQLite file; Run starts it empty.
	DatabasePath string
	// GRPCAddr, HTTPAddr: the control plane's listeners. AgentHealthAddr:
	// the agent's health endpoint.
	GRPCAddr, HTTPAddr, AgentHealthAddr string
	// Out receives the human-readable summary. Default os.Stdout.
	Out io.Writer
	// Log receives progress and errors. Default slog.Default().
	Log *slog.Logger
	// Ready, if set, is called once everything is up.
	Ready func(Env)
}

// Env describes what Run started.
type Env struct {
	KubeconfigPath string
	APIServer      string
	RESTURL        string
	GRPCAddr       string
}

func (c *Config) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.KubeconfigPath, DefaultKubeconfigPath)
	def(&c.DatabasePath, DefaultDatabasePath)
	def(&c.GRPCAddr, DefaultGRPCAddr)
	def(&c.HTTPAddr, DefaultHTTPAddr)
	def(&c.AgentHealthAddr, DefaultAgentHealth)
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Run starts the local environment (cluster, control plane, agent), prints
// where to reach it, and blocks until ctx is cancelled or a part fails; then
// it stops everything and removes the kubeconfig it wrote.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	kubeconfig, err := filepath.Abs(cfg.KubeconfigPath)
	if err != nil {
		return fmt.Errorf("localenv: kubeconfig path: %w", err)
	}

	cfg.Log.Info("starting local Kubernetes cluster", "kubernetes", testenv.KubernetesVersion)
	cluster, err := testenv.Start(ctx, testenv.Options{Name: "local", ControllerManager: true})
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	defer func() {
		cfg.Log.Info("stopping local Kubernetes cluster")
		if err := cluster.Stop(); err != nil {
			cfg.Log.Error("stop local cluster", "err", err)
		}
	}()
	if err := copyFile(cluster.KubeconfigPath, kubeconfig); err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	defer os.Remove(kubeconfig)

	// The cluster is new on every run, so is its cache.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(cfg.DatabasePath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("localenv: reset database: %w", err)
		}
	}
	st, err := store.OpenSQLite(ctx, cfg.DatabasePath, cfg.Log.With("component", "store"))
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	defer st.Close()
	cp, err := controlplane.New(controlplane.Config{
		ID: "local", GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr, Log: cfg.Log.With("component", "controlplane"),
		// The Kubernetes API proxy, read-only (the agent's default): the
		// REST API listens on loopback.
		Proxy: true,
	}, st)
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	// Dynamic Accounts are on, sealing inline kubeconfigs with a key made
	// for this run (the database is new every run too), and resolving
	// Secret references in the local cluster.
	key := make([]byte, credentials.KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	sealer, err := credentials.NewSealer(key)
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	secrets, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	cp.Extend(dynaccounts.New(dynaccounts.Config{Enabled: true, ReplicaID: "local", Log: cfg.Log.With("component", "dynaccounts"), Metrics: cp.Metrics()},
		st, cp, dynaccounts.NewCredentials(&credentials.Resolver{Client: secrets, Namespace: "default", Sealer: sealer})))

	opm := operations.New(operations.Config{ReplicaID: "local", Log: cfg.Log.With("component", "operations"), Metrics: cp.Metrics()}, st, cp)
	cp.Extend(opm)
	cp.SetUnclaimedResults(opm)

	ag, err := agent.New(agent.Config{
		ID: "local-agent", ZoneID: "local", Version: "dev", Target: cfg.GRPCAddr,
		KeepaliveTime: 20 * time.Second, KeepaliveTimeout: 10 * time.Second, HealthAddr: cfg.AgentHealthAddr,
		Accounts:    []agent.Account{{Name: AccountName, KubeconfigFile: kubeconfig, MaxResumableAge: 5 * time.Minute}},
		Log:         cfg.Log.With("component", "agent"),
		NewExecutor: agent.OpsExecutors(ops.Options{}),
		Proxy:       agent.ProxyConfig{Enabled: true},
	})
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cp.Run(gctx) })
	g.Go(func() error {
		// Once the control plane listens: the agent's first dial succeeds.
		if _, _, err := cp.Addrs(gctx); err != nil {
			return nil // a part failed or we are stopping
		}
		return ag.Run(gctx)
	})
	g.Go(func() error {
		_, httpAddr, err := cp.Addrs(gctx)
		if err != nil {
			return nil // a part failed or we are stopping
		}
		env := Env{KubeconfigPath: kubeconfig, APIServer: cluster.Host, RESTURL: "http://" + httpAddr.String(), GRPCAddr: cfg.GRPCAddr}
		fmt.Fprintf(cfg.Out, "\nkubesvc is running locally.\n")
		fmt.Fprintf(cfg.Out, "  REST API:    %s   (try: curl %s/cache/objects?account=%s&kind=Namespace)\n", env.RESTURL, env.RESTURL, AccountName)
		fmt.Fprintf(cfg.Out, "  agents:      %s/armory/agents\n", env.RESTURL)
		fmt.Fprintf(cfg.Out, "  API proxy:   %s/agents/kubernetes/accounts/%s/proxy   (read-only; try: kubectl --server <that URL> get pods -A)\n", env.RESTURL, AccountName)
		fmt.Fprintf(cfg.Out, "  gRPC:        %s (agents connect here)\n", env.GRPCAddr)
		fmt.Fprintf(cfg.Out, "  Kubernetes:  %s %s, account %q\n", testenv.KubernetesVersion, env.APIServer, AccountName)
		fmt.Fprintf(cfg.Out, "  kubeconfig:  %s\n", env.KubeconfigPath)
		fmt.Fprintf(cfg.Out, "Press Ctrl-C to stop.\n\n")
		if cfg.Ready != nil {
			cfg.Ready(env)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
