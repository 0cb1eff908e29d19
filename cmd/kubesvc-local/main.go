// Command kubesvc-local runs the whole system on one machine with embedded
// defaults (the README's run command). See internal/localenv.
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
	kubeconfig := flag.String("kubeconfig-out", localenv.DefaultKubeconfigPath, "where to write the local cluster's admin kubeconfig")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := localenv.Run(ctx, localenv.Config{KubeconfigPath: *kubeconfig, Log: log}); err != nil {
		fmt.Fprintln(os.Stderr, "kubesvc-local:", err)
		os.Exit(1)
	}
}
