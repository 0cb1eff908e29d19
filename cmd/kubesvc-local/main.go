// Command kubesvc-local runs the whole system on one machine with embedded
// defaults (the README's run command): a real Kubernetes cluster, the
// control plane on SQLite and an agent serving the cluster. See
// internal/localenv.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kubesvc/kubesvc/internal/localenv"
)

func main() {
	var cfg localenv.Config
	flag.StringVar(&cfg.KubeconfigPath, "kubeconfig-out", localenv.DefaultKubeconfigPath, "where to write the local cluster's admin kubeconfig")
	flag.StringVar(&cfg.DatabasePath, "db", localenv.DefaultDatabasePath, "control plane SQLite file (emptied at start)")
	flag.StringVar(&cfg.GRPCAddr, "grpc", localenv.DefaultGRPCAddr, "control plane gRPC address for agents")
	flag.StringVar(&cfg.HTTPAddr, "http", localenv.DefaultHTTPAddr, "control plane REST address")
	flag.StringVar(&cfg.AgentHealthAddr, "agent-health", localenv.DefaultAgentHealth, "agent health endpoint address")
	flag.Parse()

	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := localenv.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "kubesvc-local:", err)
		os.Exit(1)
	}
}
