package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubesvc/kubesvc/internal/ident"
)

// validator collects validation errors, each naming its key and, when the
// key came from a file, the file and line.
type validator struct {
	f    *File
	errs []error
}

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, v.f.dec.KeyError(key, format, args...))
}

func (v *validator) nonNegative(key string, n int64) {
	if n < 0 {
		v.fail(key, "must not be negative, got %d", n)
	}
}

func (v *validator) port(key string, p int) {
	if p < 1 || p > 65535 {
		v.fail(key, "must be a port number between 1 and 65535, got %d", p)
	}
}

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// nilIfEmpty makes empty lists nil, so that equal configurations compare equal.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// New applies defaults to f, converts units and validates. All errors are
// returned together; each is a *KeyError naming its key.
func New(f *File) (*Config, error) {
	v := &validator{f: f}
	c := &Config{
		Sources:                f.Sources(),
		Agent:                  Agent{ID: f.Agent.ID, ZoneID: f.Agent.ZoneID},
		Timeout:                time.Duration(f.TimeoutSeconds) * time.Second,
		DynamicAccountsEnabled: orDefault(f.DynamicAccountsEnabled, defaultDynamicAccountsEnabled),
		Unsupported:            append(f.dec.Unsupported(), notActedOn(f)...),
	}
	if f.Agent.ID != "" {
		if err := ident.AgentID(f.Agent.ID); err != nil {
			v.fail("agent.id", "%v", err)
		}
	}
	v.nonNegative("timeoutSeconds", int64(f.TimeoutSeconds))
	c.Clouddriver = v.clouddriver(&f.Clouddriver)
	c.Kubernetes = v.kubernetes(&f.Kubernetes)

	c.Tasks = Tasks{
		TotalBudget:      orDefault(f.Tasks.TotalBudget, defaultTotalBudget),
		BudgetPerAccount: orDefault(f.Tasks.BudgetPerAccount, defaultBudgetPerAccount),
	}
	v.nonNegative("tasks.totalBudget", int64(c.Tasks.TotalBudget))
	v.nonNegative("tasks.budgetPerAccount", int64(c.Tasks.BudgetPerAccount))

	c.Server = Server{Host: f.Server.Host, Port: orDefault(f.Server.Port, defaultServerPort)}
	v.port("server.port", c.Server.Port)
	c.Prometheus = Prometheus{Enabled: f.Prometheus.Enabled, Port: orDefault(f.Prometheus.Port, defaultPrometheusPort)}
	v.port("prometheus.port", c.Prometheus.Port)
	c.Pprof = Pprof{Enabled: f.Pprof.Enabled, Port: orDefault(f.Pprof.Port, defaultPprofPort)}
	v.port("pprof.port", c.Pprof.Port)
	if c.Pprof.Enabled && (c.Pprof.Port == c.Server.Port || c.Prometheus.Enabled && c.Pprof.Port == c.Prometheus.Port) {
		// Profiles get a listener of their own, to keep off the network
		// what the health port exposes.
		v.fail("pprof.port", "%d is also server.port or prometheus.port: give the profiles a port of their own", c.Pprof.Port)
	}

	c.Logging = Logging{File: f.Logging.File, Format: defaultLogFormat, Level: defaultLogLevel}
	if s := strings.ToLower(f.Logging.Format); s != "" {
		c.Logging.Format = s
		if s != "text" && s != "json" {
			v.fail("logging.format", "must be text or json, got %q", f.Logging.Format)
		}
	}
	if s := strings.ToLower(f.Logging.Level); s != "" {
		if s == "warning" {
			s = "warn"
		}
		c.Logging.Level = s
		switch s {
		case "panic", "fatal", "error", "warn", "info", "debug", "trace":
		default:
			v.fail("logging.level", "must be one of panic, fatal, error, warn, warning, info, debug, trace; got %q", f.Logging.Level)
		}
	}
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return c, nil
}

func (v *validator) clouddriver(f *FileClouddriver) Clouddriver {
	c := Clouddriver{
		Address:            strings.TrimSpace(orDefault(f.GRPC, defaultGRPC)),
		Insecure:           orDefault(f.Insecure, defaultInsecure),
		NoProxy:            f.NoProxy,
		KeepAliveHeartbeat: time.Duration(orDefault(f.KeepAliveHeartbeatSeconds, int(defaultKeepAliveHeartbeat/time.Second))) * time.Second,
		KeepAliveTimeout:   time.Duration(f.KeepAliveTimeOutSeconds) * time.Second,
		KeepAliveOperation: time.Duration(f.KeepAliveOperationSeconds) * time.Second,
		Backoff: Backoff{
			BaseDelay:  time.Duration(orDefault(f.Backoff.BaseDelay, int64(defaultBackoffBaseDelay))),
			Multiplier: orDefault(f.Backoff.Multiplier, defaultBackoffMultiplier),
			Jitter:     orDefault(f.Backoff.Jitter, defaultBackoffJitter),
			MaxDelay:   time.Duration(orDefault(f.Backoff.MaxDelay, int64(defaultBackoffMaxDelay))),
		},
		ResponseRetries: Retries{
			Enabled:    orDefault(f.ResponseRetries.Enabled, defaultRetriesEnabled),
			MaxRetries: orDefault(f.ResponseRetries.MaxRetries, defaultRetriesMax),
			BackOff:    ms(orDefault(f.ResponseRetries.BackOffMs, int(defaultRetriesBackOff/time.Millisecond))),
		},
		TLS: TLS(f.TLS),
		Auth: Auth{Token: f.Auth.Token, TokenCommand: TokenCommand{
			Command:         f.Auth.TokenCommand.Command,
			Args:            nilIfEmpty(f.Auth.TokenCommand.Args),
			Format:          strings.ToLower(f.Auth.TokenCommand.Format),
			RefreshInterval: time.Duration(f.Auth.TokenCommand.RefreshIntervalSeconds) * time.Second,
		}},
	}
	if c.Address == "" {
		v.fail("clouddriver.grpc", "must not be empty")
	}
	v.nonNegative("clouddriver.keepAliveHeartbeatSeconds", int64(c.KeepAliveHeartbeat))
	v.nonNegative("clouddriver.keepAliveTimeOutSeconds", int64(f.KeepAliveTimeOutSeconds))
	v.nonNegative("clouddriver.keepAliveOperationSeconds", int64(f.KeepAliveOperationSeconds))

	b := c.Backoff
	if b.BaseDelay <= 0 {
		v.fail("clouddriver.backoff.baseDelay", "must be positive (nanoseconds), got %d", int64(b.BaseDelay))
	}
	if b.Multiplier < 1 {
		v.fail("clouddriver.backoff.multiplier", "must be at least 1, got %g", b.Multiplier)
	}
	if b.Jitter < 0 || b.Jitter > 1 {
		v.fail("clouddriver.backoff.jitter", "must be between 0 and 1, got %g", b.Jitter)
	}
	if b.MaxDelay < b.BaseDelay {
		v.fail("clouddriver.backoff.maxDelay", "must not be less than baseDelay (%d), got %d", int64(b.BaseDelay), int64(b.MaxDelay))
	}
	v.nonNegative("clouddriver.responseRetries.maxRetries", int64(c.ResponseRetries.MaxRetries))
	v.nonNegative("clouddriver.responseRetries.backOffMs", int64(c.ResponseRetries.BackOff))

	if c.TLS.ClientKeyFile != "" && c.TLS.ClientCertFile == "" {
		v.fail("clouddriver.tls.clientKeyFile", "requires clouddriver.tls.clientCertFile")
	}
	tc := &c.Auth.TokenCommand
	if tc.Command == "" {
		if len(tc.Args) > 0 || tc.Format != "" || tc.RefreshInterval != 0 {
			v.fail("clouddriver.auth.tokenCommand.command", "required when other tokenCommand keys are set")
		}
	} else {
		if c.Auth.Token != "" {
			v.fail("clouddriver.auth.tokenCommand", "cannot be combined with clouddriver.auth.token")
		}
		switch tc.Format {
		case "":
			tc.Format = "json"
		case "json", "raw":
		default:
			v.fail("clouddriver.auth.tokenCommand.format", "must be json or raw, got %q", f.Auth.TokenCommand.Format)
		}
		v.nonNegative("clouddriver.auth.tokenCommand.refreshIntervalSeconds", int64(tc.RefreshInterval))
	}
	return c
}

func (v *validator) kubernetes(f *FileKubernetes) Kubernetes {
	k := Kubernetes{
		NoProxy:          f.NoProxy,
		ReconnectTimeout: ms(orDefault(f.ReconnectTimeoutMs, int(defaultReconnectTimeout/time.Millisecond))),
		CacheGroupSize:   f.CacheGroupSize,
		CacheGroupDelay:  ms(f.CacheGroupDelayMs),
		Proxy:            KubeProxy{Enabled: f.Proxy.Enabled, ReadOnly: orDefault(f.Proxy.ReadOnly, true)},
		Retries: KubeRetries{
			Enabled:         orDefault(f.Retries.Enabled, defaultRetriesEnabled),
			MaxRetries:      orDefault(f.Retries.MaxRetries, defaultRetriesMax),
			BackOff:         ms(orDefault(f.Retries.BackOffMs, int(defaultRetriesBackOff/time.Millisecond))),
			RetryAnyError:   f.Retries.RetryAnyError,
			RetryableErrors: f.Retries.RetryableErrors,
		},
	}
	if k.Retries.RetryableErrors == nil {
		k.Retries.RetryableErrors = []string{"timeout", "deadline exceeded"}
	}
	v.nonNegative("kubernetes.reconnectTimeoutMs", int64(k.ReconnectTimeout))
	v.nonNegative("kubernetes.cacheGroupSize", int64(k.CacheGroupSize))
	v.nonNegative("kubernetes.cacheGroupDelayMs", int64(k.CacheGroupDelay))
	v.nonNegative("kubernetes.retries.maxRetries", int64(k.Retries.MaxRetries))
	v.nonNegative("kubernetes.retries.backOffMs", int64(k.Retries.BackOff))

	ssa := &f.ServerSideApply
	k.ServerSideApply = ServerSideApply{
		Enabled:            v.ssaEnabled("kubernetes.serverSideApply.enabled", ssa.Enabled),
		ClearManagedFields: v.ssaMode("kubernetes.serverSideApply.clearManagedFields", ssa.ClearManagedFields),
		ManifestDefaults:   v.ssaMode("kubernetes.serverSideApply.manifestDefaults", ssa.ManifestDefaults),
	}
	seenKinds := map[string]int{}
	for i, fk := range ssa.Kinds {
		p := fmt.Sprintf("kubernetes.serverSideApply.kinds[%d]", i)
		if fk.Kind == "" {
			v.fail(p+".kind", "required")
		} else if j, dup := seenKinds[strings.ToLower(fk.Kind)]; dup {
			v.fail(p+".kind", "%q is already configured in kinds[%d]", fk.Kind, j)
		} else {
			seenKinds[strings.ToLower(fk.Kind)] = i
		}
		k.ServerSideApply.Kinds = append(k.ServerSideApply.Kinds, SSAKind{
			Kind:               fk.Kind,
			Enabled:            v.ssaEnabled(p+".enabled", fk.Enabled),
			ClearManagedFields: v.ssaMode(p+".clearManagedFields", fk.ClearManagedFields),
			ManifestDefaults:   v.ssaMode(p+".manifestDefaults", fk.ManifestDefaults),
		})
	}

	names := map[string]int{}
	for i := range f.Accounts {
		a := v.account(fmt.Sprintf("kubernetes.accounts[%d]", i), &f.Accounts[i])
		if a.Name != "" {
			if j, dup := names[a.Name]; dup {
				v.fail(fmt.Sprintf("kubernetes.accounts[%d].name", i), "%q is already used by kubernetes.accounts[%d]", a.Name, j)
			}
			names[a.Name] = i
		}
		k.Accounts = append(k.Accounts, a)
	}
	return k
}

// ssaEnabled reads an apply policy whose absence means something of its
// own: "" (server-side apply unless annotated otherwise, for the global
// policy; the global policy, for a kind).
func (v *validator) ssaEnabled(key, s string) SSAMode {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return v.ssaMode(key, s)
}

func (v *validator) ssaMode(key, s string) SSAMode {
	switch m := SSAMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return SSAAllowed
	case SSAAllowed, SSAAlways, SSANever:
		return m
	default:
		v.fail(key, "must be always, never or allowed, got %q", s)
		return SSAAllowed
	}
}
