// Command agent runs the kubesvc agent: it reads its YAML configuration,
// dials the control plane, and streams and serves its Kubernetes accounts.
//
//	agent --config /opt/armory/config/armory-agent.yml
//
// With no --config, it reads /opt/armory/config/armory-agent.yml and, if
// present, /opt/armory/config/armory-agent-local.yml (later files override
// earlier ones; both are watched and reloaded on change).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubesvc/kubesvc/internal/agent/config"
	"github.com/kubesvc/kubesvc/internal/agentapp"
)

type paths []string

func (p *paths) String() string     { return strings.Join(*p, ",") }
func (p *paths) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var required, optional paths
	flag.Var(&required, "config", "configuration file (repeatable; later files override earlier ones)")
	flag.Var(&optional, "config-optional", "configuration file read only if it exists (repeatable)")
	flag.Parse()
	if len(required) == 0 && len(optional) == 0 {
		required = paths{"/opt/armory/config/armory-agent.yml"}
		optional = paths{"/opt/armory/config/armory-agent-local.yml"}
	}
	var sources []config.Source
	for _, p := range required {
		sources = append(sources, config.Source{Path: p})
	}
	for _, p := range optional {
		sources = append(sources, config.Source{Path: p, Optional: true})
	}

	// The logger follows logging.* once the configuration is read; until
	// then, and for configuration errors, it writes text to stderr.
	cfg, err := config.Load(sources...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(2)
	}
	log, closeLog, err := newLogger(cfg.Logging)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(2)
	}
	defer closeLog()
	// client-go logs through klog: into the same log, in its format.
	klog.SetSlogLogger(log.With("component", "client-go"))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := agentapp.Run(ctx, sources, log); err != nil {
		log.Error("agent stopped", "err", err)
		closeLog()
		os.Exit(1)
	}
}

func newLogger(l config.Logging) (*slog.Logger, func(), error) {
	var w io.Writer = os.Stdout
	closeFn := func() {}
	if l.File != "" {
		f, err := os.OpenFile(l.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("logging.file: %w", err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), closeFn, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closeFn, nil
}
