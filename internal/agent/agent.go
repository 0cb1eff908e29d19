package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/agent/scrub"
	"github.com/kubesvc/kubesvc/internal/ident"
	"github.com/kubesvc/kubesvc/internal/kubeproxy"
)

// Account is one Kubernetes account the agent serves.
type Account struct {
	Name string
	// Exactly one credential source: KubeconfigFile, Kubeconfig (contents)
	// or ServiceAccount (in-cluster).
	KubeconfigFile          string
	Kubeconfig              []byte
	Context                 string
	ServiceAccount          bool
	Insecure                bool
	Namespaces              []string
	OmitNamespaces          []string
	Kinds                   []string
	OmitKinds               []string
	OnlyNamespacedResources bool
	// MaxResumableAge: resume points older than this are not used; the
	// stream is listed again instead. 0 means never resume.
	MaxResumableAge time.Duration
	Dynamic         bool
	// NoProxy: reach the API server directly, whatever HTTPS_PROXY says.
	NoProxy bool
	// CRDs are custom kinds sent as synthetic CustomResourceDefinitions
	// with OnlyNamespacedResources (customResourceDefinitions).
	CRDs []CRD
	// Permissions maps READ and WRITE to role names; the agent only
	// reports them (AccountInfo), for the control plane's account API.
	Permissions map[string][]string

	// server counts the times the account's kubeconfig file named another
	// API server (Agent.serverMoved): set by Agent.snapshot, it makes the
	// account differ from the one served before, which restarts it.
	server int
	// inCluster, for tests, is where ServiceAccount's configuration is
	// read from; nil: the service account's files (inClusterFiles).
	inCluster *inClusterFiles
	// pollEvery, for tests, replaces kubeconfigPollEvery.
	pollEvery time.Duration
}

// kubeconfigPoll is how often the account's kubeconfig file (or CA file)
// is read again while nothing fails.
func (a Account) kubeconfigPoll() time.Duration {
	if a.pollEvery > 0 {
		return a.pollEvery
	}
	return kubeconfigPollEvery
}

func (a Account) info() *kubesvcv1.AccountInfo {
	info := &kubesvcv1.AccountInfo{Name: a.Name}
	a.fillInfo(info)
	return info
}

func (a Account) fillInfo(info *kubesvcv1.AccountInfo) {
	info.Namespaces = a.Namespaces
	info.Kinds = a.Kinds
	info.OmitKinds = a.OmitKinds
	info.OnlyNamespacedResources = a.OnlyNamespacedResources
	info.MaxResumableResourceAgeMs = a.MaxResumableAge.Milliseconds()
	info.Dynamic = a.Dynamic
	info.Permissions = nil
	for kind, roles := range a.Permissions {
		if info.Permissions == nil {
			info.Permissions = map[string]*kubesvcv1.Roles{}
		}
		info.Permissions[kind] = &kubesvcv1.Roles{Roles: roles}
	}
}

// Backoff is the reconnect schedule (clouddriver.backoff.*).
type Backoff struct {
	BaseDelay  time.Duration
	Multiplier float64
	Jitter     float64
	MaxDelay   time.Duration
}

// Config configures an Agent; New applies the defaults named on each field.
type Config struct {
	// ID identifies this agent replica. Default: $POD_NAME, else host name.
	ID string
	// ZoneID groups agent replicas that serve the same accounts. Default:
	// "<deployment>_<namespace>" derived from $POD_NAME and $POD_NAMESPACE
	// inside Kubernetes, else the host name.
	ZoneID  string
	Version string
	// Target is the control plane's gRPC address (clouddriver.grpc).
	Target string
	// NoProxy: dial Target directly, whatever HTTPS_PROXY says
	// (clouddriver.noProxy).
	NoProxy bool
	// KubernetesNoProxy: reach the API servers of dynamic accounts
	// directly (kubernetes.noProxy; configured accounts carry their own).
	KubernetesNoProxy bool
	// TLS, when set, secures the connection; nil means plaintext
	// (clouddriver.insecure).
	TLS *tls.Config
	// Auth, when set, adds credentials to every call: a bearer token
	// (clouddriver.auth.*, NewTokenCredentials).
	Auth credentials.PerRPCCredentials
	// KeepaliveTime is the gRPC ping interval (0: no pings);
	// KeepaliveTimeout how long to wait for the answer.
	KeepaliveTime, KeepaliveTimeout time.Duration
	Backoff                         Backoff
	// TotalBudget and BudgetPerAccount bound concurrent list tasks.
	TotalBudget, BudgetPerAccount int
	// Accounts served at start; SetAccounts replaces them later.
	Accounts []Account
	// HealthAddr serves /health and /metrics (server.port). Empty: off.
	HealthAddr string
	// MetricsAddr serves /metrics and /prometheus_metrics (prometheus.enabled,
	// prometheus.port). Empty: off; equal to HealthAddr: served there.
	MetricsAddr string
	// PprofAddr serves Go's profiles under /debug/pprof/ (pprof.enabled,
	// pprof.port). Empty: off.
	PprofAddr string
	// DisableDynamicAccounts refuses the control plane's account commands
	// (dynamicAccountsEnabled: false).
	DisableDynamicAccounts bool
	// NewExecutor builds the executor of operations for an account's
	// cluster; nil refuses operations.
	NewExecutor ExecutorFactory
	// Proxy is what the agent relays of the control plane's Kubernetes
	// API proxy (kubernetes.proxy.*); the zero value relays nothing.
	Proxy ProxyConfig
	// ResponseRetries governs resending results the control plane did not
	// acknowledge (clouddriver.responseRetries.*). Nil: the defaults.
	ResponseRetries *ResponseRetries
	Log             *slog.Logger
}

// Agent connects to the control plane and streams its accounts.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	scrubber *scrub.Scrubber
	stats    *Stats
	// states: each account's last reported state (/health, metrics).
	states accountStates

	mu       sync.Mutex         // guards accounts, dynamic, servers, infos, connected, executors, relays, configErr*
	accounts map[string]Account // from the configuration
	dynamic  map[string]Account // added by the control plane
	// servers is, by account name, Account.server: how many times its
	// kubeconfig file named another API server.
	servers map[string]int
	infos   map[string]*kubesvcv1.AccountInfo
	// facts: what serving each account learnt, reused across sessions.
	facts     *factsCache
	executors perAccount[Executor]
	relays    perAccount[*kubeproxy.Relay] // the Kubernetes API proxy's
	operator  *operator                    // executes operations, keeps their results
	connected bool
	changed   chan struct{} // signals an account change; capacity 1
	// configErr is the last failed reload of the configuration files while
	// they do not read cleanly again (SetConfigError), since when.
	configErr      string
	configErrSince time.Time
}

// Stats counts what the agent did, for tests, logs and metrics.
type Stats struct {
	Connects    atomic.Int64 // sessions welcomed by the control plane
	Relists     atomic.Int64 // lists completed (SyncEnd sent)
	Resumes     atomic.Int64 // streams resumed from a control-plane resume point
	Changes     atomic.Int64 // changes sent
	Batches     atomic.Int64 // batches sent
	BatchBytes  atomic.Int64 // bytes of batches sent
	Disconnects atomic.Int64
	Truncated   atomic.Int64 // objects sent without their body (too large)
	Streams     atomic.Int64 // streams running now (listed, watched or synthetic)
	// ListsRefused counts lists the API server refused (forbidden,
	// unauthorized, not found), ListsFailed those failing otherwise (the
	// API server unreachable): each is retried with backoff.
	ListsRefused, ListsFailed atomic.Int64
	// Proxied counts Kubernetes API requests relayed to an API server;
	// ProxyRefused those refused (kubernetes.proxy.*, Secrets...);
	// ProxyActive those being relayed now.
	Proxied, ProxyRefused, ProxyActive atomic.Int64
	// ConfigReloadErrors counts failed reloads of the configuration files.
	ConfigReloadErrors atomic.Int64
}

// New validates cfg and returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Target == "" {
		return nil, errors.New("agent: clouddriver.grpc: required")
	}
	if cfg.ID == "" {
		cfg.ID = defaultID()
	}
	if err := ident.AgentID(cfg.ID); err != nil {
		// The control plane would refuse the hello: say so at start.
		return nil, fmt.Errorf("agent: agent.id %w (from $POD_NAME or the host name when not set)", err)
	}
	if cfg.ZoneID == "" {
		cfg.ZoneID = defaultZone(cfg.ID)
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = Backoff{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 120 * time.Second}
	}
	if cfg.TotalBudget <= 0 {
		cfg.TotalBudget = 32
	}
	if cfg.BudgetPerAccount <= 0 {
		cfg.BudgetPerAccount = 8
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	retries := DefaultResponseRetries()
	if cfg.ResponseRetries != nil {
		retries = *cfg.ResponseRetries
	}
	a := &Agent{
		cfg: cfg, log: cfg.Log, scrubber: scrub.New(), stats: &Stats{},
		accounts: map[string]Account{}, dynamic: map[string]Account{}, servers: map[string]int{}, infos: map[string]*kubesvcv1.AccountInfo{},
		facts:     newFactsCache(),
		executors: perAccount[Executor]{},
		relays:    perAccount[*kubeproxy.Relay]{},
		operator:  newOperator(retries, cfg.Log),
		changed:   make(chan struct{}, 1),
	}
	if err := a.SetAccounts(cfg.Accounts); err != nil {
		return nil, err
	}
	return a, nil
}

// Stats returns the agent's live counters.
func (a *Agent) Stats() *Stats { return a.stats }

// Identity returns the agent's id and zone, as derived by New when not
// configured.
func (a *Agent) Identity() (id, zone string) { return a.cfg.ID, a.cfg.ZoneID }

// SetAccounts replaces the served accounts. Added accounts start streaming,
// removed ones stop (and leave the control plane's cache), changed ones
// restart. It is safe to call at any time.
func (a *Agent) SetAccounts(accounts []Account) error {
	next := make(map[string]Account, len(accounts))
	for i, acct := range accounts {
		if acct.Name == "" {
			return fmt.Errorf("agent: kubernetes.accounts[%d].name: required", i)
		}
		if _, dup := next[acct.Name]; dup {
			return fmt.Errorf("agent: kubernetes.accounts[%d].name: duplicate account %q", i, acct.Name)
		}
		next[acct.Name] = acct
	}
	a.mu.Lock()
	a.accounts = next
	for name := range a.infos {
		_, static := next[name]
		_, dynamic := a.dynamic[name]
		if !static && !dynamic {
			delete(a.infos, name)
		}
	}
	for name := range a.executors {
		_, static := next[name]
		_, dynamic := a.dynamic[name]
		if !static && !dynamic {
			delete(a.executors, name)
			delete(a.relays, name)
		}
	}
	for name := range a.servers {
		_, static := next[name]
		_, dynamic := a.dynamic[name]
		if !static && !dynamic {
			delete(a.servers, name)
		}
	}
	dynamic := make(map[string]bool, len(a.dynamic))
	for name := range a.dynamic {
		dynamic[name] = true
	}
	a.mu.Unlock()
	a.facts.forget(func(name string) bool {
		_, static := next[name]
		return static || dynamic[name]
	})
	a.signalChanged()
	return nil
}

func (a *Agent) signalChanged() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// snapshot returns every account served: configured ones, and dynamic
// ones whose name no configured account takes.
func (a *Agent) snapshot() map[string]Account {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]Account, len(a.accounts)+len(a.dynamic))
	for k, v := range a.dynamic {
		out[k] = v
	}
	for k, v := range a.accounts {
		out[k] = v
	}
	for k, v := range out {
		if n := a.servers[k]; n != 0 {
			v.server = n
			out[k] = v
		}
	}
	return out
}

// served returns the account of that name as snapshot does. a.mu must be
// held.
func (a *Agent) served(name string) (Account, bool) {
	acct, ok := a.accounts[name]
	if !ok {
		acct, ok = a.dynamic[name]
	}
	acct.server = a.servers[name]
	return acct, ok
}

// serverMoved restarts an account whose kubeconfig file names another API
// server, which may be another cluster (other resource versions, other
// kinds): as after an edit of the account, its streams are discovered and
// listed again, against the new server; its operations and API proxy use
// it too. The first of the account's clients to notice tells; the others,
// and the clients of settings since replaced, are ignored.
func (a *Agent) serverMoved(acct Account, from, to string) {
	a.mu.Lock()
	cur, ok := a.served(acct.Name)
	if !ok || !cur.sameStreaming(acct) {
		a.mu.Unlock()
		return
	}
	a.servers[acct.Name]++
	// Described again with the new server (a standby account's hello).
	delete(a.infos, acct.Name)
	a.mu.Unlock()
	// Never the file's content: its path and the servers.
	a.log.Warn("the account's kubeconfig file names another API server; restarting the account against it (discovery, and a list of every stream)",
		"account", acct.Name, "kubeconfigFile", acct.KubeconfigFile, "server", to, "previousServer", from)
	a.signalChanged()
}

func (a *Agent) rememberInfo(info *kubesvcv1.AccountInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, static := a.accounts[info.GetName()]
	_, dynamic := a.dynamic[info.GetName()]
	if static || dynamic {
		a.infos[info.GetName()] = info
	}
}

func (a *Agent) setConnected(c bool) {
	a.mu.Lock()
	a.connected = c
	a.mu.Unlock()
}

// SetConfigError reports a failed reload of the configuration files (the
// previous configuration stays in force), or, with nil, that they read
// cleanly again. /health and the metrics show it.
func (a *Agent) SetConfigError(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		a.configErr, a.configErrSince = "", time.Time{}
		return
	}
	a.stats.ConfigReloadErrors.Add(1)
	if a.configErr == "" {
		a.configErrSince = time.Now()
	}
	a.configErr = err.Error()
}

// ConfigError returns the message of the configuration's failed reload
// and since when the files fail, or "" when they read cleanly.
func (a *Agent) ConfigError() (string, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.configErr, a.configErrSince
}

// Connected reports whether a session with the control plane is up.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connected
}

// hello describes the agent and its accounts, with the API server facts
// learnt on earlier sessions (fresh ones follow in account statuses).
func (a *Agent) hello() *kubesvcv1.Hello {
	accounts := a.snapshot()
	names := make([]string, 0, len(accounts))
	for name := range accounts {
		names = append(names, name)
	}
	slices.Sort(names)
	h := &kubesvcv1.Hello{AgentId: a.cfg.ID, ZoneId: a.cfg.ZoneID, Version: a.cfg.Version, DynamicAccountsEnabled: !a.cfg.DisableDynamicAccounts, Protocol: 1, Assignable: true,
		ProxyRelays: a.cfg.Proxy.Enabled, ProxyWrites: a.cfg.Proxy.Enabled && a.cfg.Proxy.Writes}
	for _, name := range names {
		h.Accounts = append(h.Accounts, a.infoOf(accounts[name]))
	}
	return h
}

// infoOf describes an account with the API server facts learnt so far.
func (a *Agent) infoOf(acct Account) *kubesvcv1.AccountInfo {
	a.mu.Lock()
	info, ok := a.infos[acct.Name]
	a.mu.Unlock()
	if ok {
		// The API server facts as learnt, the settings as they are now
		// (an edit since, e.g. of permissions).
		info = proto.Clone(info).(*kubesvcv1.AccountInfo)
		acct.fillInfo(info)
		return info
	}
	info = acct.info()
	if cfg, err := loadConfig(acct); err == nil {
		info.ApiHost = cfg.Host
	}
	return info
}

func (a Account) equal(b Account) bool { return reflect.DeepEqual(a, b) }

// sameStreaming reports whether a and b differ at most in what only
// describes the account (permissions): such an edit needs no new
// connection, discovery or list.
func (a Account) sameStreaming(b Account) bool {
	a.Permissions, b.Permissions = nil, nil
	return a.equal(b)
}

// Run connects and streams until ctx ends; it returns nil then, or the
// error of a part that failed for good (e.g. the health port in use).
func (a *Agent) Run(ctx context.Context) error {
	metrics := a.metricsHandler()
	type endpoint struct {
		name    string
		handler http.Handler
		lis     net.Listener
	}
	var endpoints []endpoint
	listen := func(name, addr string, h http.Handler) error {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			for _, e := range endpoints {
				e.lis.Close()
			}
			return fmt.Errorf("agent: %s on %s: %w", name, addr, err)
		}
		endpoints = append(endpoints, endpoint{name, h, lis})
		return nil
	}
	if a.cfg.HealthAddr != "" {
		if err := listen("health endpoint", a.cfg.HealthAddr, a.healthHandler(metrics)); err != nil {
			return err
		}
	}
	if a.cfg.MetricsAddr != "" && a.cfg.MetricsAddr != a.cfg.HealthAddr {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		mux.Handle("GET /prometheus_metrics", metrics)
		if err := listen("metrics endpoint", a.cfg.MetricsAddr, mux); err != nil {
			return err
		}
	}
	if a.cfg.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		if err := listen("pprof endpoint", a.cfg.PprofAddr, mux); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.connectionLoop(gctx) })
	for _, e := range endpoints {
		// Requests see gctx: a running profile ends with the agent.
		srv := &http.Server{Handler: e.handler, ReadHeaderTimeout: 5 * time.Second,
			BaseContext: func(net.Listener) context.Context { return gctx }}
		g.Go(func() error {
			if err := srv.Serve(e.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("agent: %s: %w", e.name, err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	err := g.Wait()
	a.operator.stop() // operations outlive sessions, not the agent
	return err
}

func defaultID() string {
	if pod := os.Getenv("POD_NAME"); pod != "" {
		return pod
	}
	h, _ := os.Hostname()
	return h
}

// defaultZone derives "<deployment>_<namespace>" from a pod name like
// "armory-agent-7c9f8d6b5-x2x7k", else falls back to the id.
func defaultZone(id string) string {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		return id
	}
	name := os.Getenv("POD_NAME")
	if name == "" {
		name = id
	}
	deployment := name
	for range 2 {
		if i := lastDash(deployment); i > 0 {
			deployment = deployment[:i]
		}
	}
	return deployment + "_" + ns
}

func lastDash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '-' {
			return i
		}
	}
	return -1
}
