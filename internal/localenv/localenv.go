package localenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// DefaultKubeconfigPath is where Run writes the local cluster's kubeconfig
// unless told otherwise, relative to the working directory.
const DefaultKubeconfigPath = ".local/kubeconfig"

// Config configures Run.
type Config struct {
	// KubeconfigPath is where the cluster's admin kubeconfig is copied.
	// Default DefaultKubeconfigPath.
	KubeconfigPath string
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
}

// Run starts the local environment, prints where to reach it, and blocks
// until ctx is cancelled; then it stops everything and removes the
// kubeconfig it wrote.
func Run(ctx context.Context, cfg Config) error {
	if cfg.KubeconfigPath == "" {
		cfg.KubeconfigPath = DefaultKubeconfigPath
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
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

	env := Env{KubeconfigPath: kubeconfig, APIServer: cluster.Host}
	fmt.Fprintf(cfg.Out, "\nLocal Kubernetes cluster %s is up.\n", testenv.KubernetesVersion)
	fmt.Fprintf(cfg.Out, "  API server:  %s\n", env.APIServer)
	fmt.Fprintf(cfg.Out, "  kubeconfig:  %s\n", env.KubeconfigPath)
	fmt.Fprintf(cfg.Out, "  try:         kubectl --kubeconfig %s get namespaces\n", cfg.KubeconfigPath)
	fmt.Fprintf(cfg.Out, "Press Ctrl-C to stop.\n\n")
	if cfg.Ready != nil {
		cfg.Ready(env)
	}
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return nil
	}
	return context.Cause(ctx)
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
