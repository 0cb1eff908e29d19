package agentapp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/config"
	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/certs"
)

// Version is the agent version reported to the control plane; the build
// may override it with -ldflags.
var Version = "dev"

// Run loads the configuration from sources, starts the agent and follows
// changes of the files until ctx ends.
func Run(ctx context.Context, sources []config.Source, log *slog.Logger) error {
	var ag *agent.Agent
	r := &reloader{log: log, apply: func(accts []agent.Account) error { return ag.SetAccounts(accts) }}
	w, err := config.NewWatcher(config.WatcherOptions{
		Sources: sources,
		Logger:  log,
		OnChange: func(prev, next *config.Config) {
			ag.SetConfigError(nil)
			r.changed(prev, next)
		},
		// Reported on /health (configError) and in the metrics until the
		// files read cleanly again.
		OnError:   func(err error) { ag.SetConfigError(err) },
		OnRecover: func() { ag.SetConfigError(nil) },
	})
	if err != nil {
		return err
	}
	r.started = w.Current()
	cfg := r.started
	for _, key := range cfg.Unsupported {
		log.Warn("configuration key is documented for the Armory agent but not supported here; ignored", "key", key)
	}
	acfg, err := AgentConfig(cfg, log)
	if err != nil {
		return err
	}
	ag, err = agent.New(acfg)
	if err != nil {
		return err
	}
	// The id and zone as derived when not configured (pod name, namespace).
	id, zone := ag.Identity()
	log.Info("agent starting", "id", id, "zone", zone, "version", acfg.Version, "config", cfg.Sources,
		"controlplane", acfg.Target, "tls", acfg.TLS != nil, "accounts", len(acfg.Accounts), "dynamicAccounts", cfg.DynamicAccountsEnabled)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return ag.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		if ctx.Err() != nil { // stopped from outside (a signal), not by a failed part
			log.Info("agent stopping", "reason", context.Cause(ctx).Error())
		}
		return nil
	})
	return g.Wait()
}

// AgentConfig maps a validated configuration onto the agent's.
func AgentConfig(cfg *config.Config, log *slog.Logger) (agent.Config, error) {
	c := agent.Config{
		ID:               cfg.Agent.ID,
		ZoneID:           cfg.Agent.ZoneID,
		Version:          Version,
		Target:           cfg.Clouddriver.Address,
		KeepaliveTime:    cfg.Clouddriver.KeepAliveHeartbeat,
		KeepaliveTimeout: cfg.Clouddriver.KeepAliveTimeout,
		Backoff: agent.Backoff{
			BaseDelay: cfg.Clouddriver.Backoff.BaseDelay, Multiplier: cfg.Clouddriver.Backoff.Multiplier,
			Jitter: cfg.Clouddriver.Backoff.Jitter, MaxDelay: cfg.Clouddriver.Backoff.MaxDelay,
		},
		TotalBudget:       unlimitedIfZero(cfg.Tasks.TotalBudget),
		BudgetPerAccount:  unlimitedIfZero(cfg.Tasks.BudgetPerAccount),
		Accounts:          Accounts(cfg),
		NoProxy:           cfg.Clouddriver.NoProxy,
		KubernetesNoProxy: cfg.Kubernetes.NoProxy,
		Proxy:             agent.ProxyConfig{Enabled: cfg.Kubernetes.Proxy.Enabled, Writes: !cfg.Kubernetes.Proxy.ReadOnly},
		Log:               log,

		DisableDynamicAccounts: !cfg.DynamicAccountsEnabled,
		NewExecutor:            agent.OpsExecutors(opsOptions(cfg, log)),
		ResponseRetries: &agent.ResponseRetries{
			Enabled: cfg.Clouddriver.ResponseRetries.Enabled, MaxRetries: cfg.Clouddriver.ResponseRetries.MaxRetries,
			BackOff: cfg.Clouddriver.ResponseRetries.BackOff,
		},
	}
	if cfg.Server.Port > 0 {
		c.HealthAddr = net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port))
	}
	if cfg.Prometheus.Enabled {
		c.MetricsAddr = net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Prometheus.Port))
	}
	if cfg.Pprof.Enabled {
		c.PprofAddr = net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Pprof.Port))
	}
	if auth := cfg.Clouddriver.Auth; auth.Token != "" || auth.TokenCommand.Command != "" {
		var cmd *agent.TokenCommand
		if tc := auth.TokenCommand; tc.Command != "" {
			cmd = &agent.TokenCommand{Command: tc.Command, Args: tc.Args, JSON: tc.Format != "raw", Refresh: tc.RefreshInterval}
		}
		c.Auth = agent.NewTokenCredentials(auth.Token, cmd)
		if cfg.Clouddriver.Insecure {
			log.Warn("clouddriver.auth sends a bearer token over a plaintext connection (clouddriver.insecure: true): " +
				"only safe to a TLS-terminating proxy on the same host or network")
		}
	}
	if !cfg.Clouddriver.Insecure {
		t, err := tlsConfig(cfg.Clouddriver.TLS, cfg.Clouddriver.Address, log)
		if err != nil {
			return agent.Config{}, err
		}
		c.TLS = t
	}
	return c, nil
}

// opsOptions maps kubernetes.serverSideApply.* and kubernetes.retries.*.
func opsOptions(cfg *config.Config, log *slog.Logger) ops.Options {
	k := cfg.Kubernetes
	o := ops.Options{
		ServerSideApply: ops.SSAMode(k.ServerSideApply.Enabled),
		Retries: &ops.Retries{
			Enabled: k.Retries.Enabled, MaxRetries: k.Retries.MaxRetries, BackOff: k.Retries.BackOff,
			RetryAnyError: k.Retries.RetryAnyError, RetryableErrors: k.Retries.RetryableErrors,
		},
		Logger: log.With("component", "operations"),
	}
	for _, kind := range k.ServerSideApply.Kinds {
		if o.SSAKinds == nil {
			o.SSAKinds = map[string]ops.SSAMode{}
		}
		o.SSAKinds[kind.Kind] = ops.SSAMode(kind.Enabled)
	}
	return o
}

// Accounts converts the configured accounts.
func Accounts(cfg *config.Config) []agent.Account {
	out := make([]agent.Account, 0, len(cfg.Kubernetes.Accounts))
	for _, a := range cfg.Kubernetes.Accounts {
		var crds []agent.CRD
		for _, c := range a.CustomResourceDefinitions {
			kind, group, _ := strings.Cut(c.Kind, ".")
			crds = append(crds, agent.CRD{Kind: kind, Group: group, Cluster: c.Scope == config.ScopeCluster})
		}
		out = append(out, agent.Account{
			Name: a.Name, KubeconfigFile: a.KubeconfigFile, Context: a.Context, ServiceAccount: a.ServiceAccount,
			Insecure: a.Insecure, Namespaces: a.Namespaces, OmitNamespaces: a.OmitNamespaces,
			Kinds: a.Kinds, OmitKinds: a.OmitKinds, OnlyNamespacedResources: a.OnlyNamespacedResources,
			MaxResumableAge: a.MaxResumableResourceAge,
			NoProxy:         a.NoProxy || cfg.Kubernetes.NoProxy,
			Permissions:     a.Permissions,
			CRDs:            crds,
		})
	}
	return out
}

func unlimitedIfZero(n int) int {
	if n == 0 {
		return math.MaxInt32
	}
	return n
}

// tlsConfig builds the agent's TLS towards the control plane at target
// (host:port); a rotated client certificate or CA bundle is picked up on
// the next handshake.
func tlsConfig(c config.TLS, target string, log *slog.Logger) (*tls.Config, error) {
	t, err := certs.NewClient(certs.ClientOptions{
		CACertFile: c.CACertFile, ServerName: c.ServerName, Host: dialHost(target), InsecureSkipVerify: c.InsecureSkipVerify,
		ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile, ClientKeyPassword: c.ClientKeyFilePassword,
		OnReloadError: func(err error) {
			log.Error("clouddriver.tls: a rotated client certificate or CA bundle could not be loaded; still using the previous one", "err", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("clouddriver.tls: %w", err)
	}
	return t, nil
}

// dialHost returns the host a gRPC target dials, the name its certificate
// must carry when clouddriver.tls.serverName is unset: "" for a Unix
// socket (gRPC then expects "localhost") or a target without one.
func dialHost(target string) string {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return ""
	}
	// A target may name its resolver (dns:///host:port): the endpoint is
	// what follows the last slash.
	endpoint := target[strings.LastIndex(target, "/")+1:]
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return endpoint
	}
	return host
}

// reloader applies a changed configuration to the running agent: the
// accounts at once; the rest needs a restart, which it says whenever the
// new configuration's other settings differ from those the agent started
// with (not from the previous reload: an edit reverted needs none).
type reloader struct {
	log     *slog.Logger
	started *config.Config
	apply   func([]agent.Account) error
}

func (r *reloader) changed(prev, next *config.Config) {
	if keys := config.RestartSettings(r.started, next); len(keys) > 0 {
		r.log.Warn("settings other than kubernetes.accounts differ from those the agent started with: they take effect when the agent restarts; the accounts are applied now", "sections", keys)
	}
	if err := r.apply(Accounts(next)); err != nil {
		r.log.Error("apply new accounts", "err", err)
	}
}
