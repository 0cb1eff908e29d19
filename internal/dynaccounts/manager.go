package dynaccounts

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/logrepeat"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Config configures the feature (kubesvc.dynamicAccounts.*).
type Config struct {
	// Enabled: when false every endpoint answers 501 and nothing runs.
	Enabled bool
	// RetryFrequency: how often FAILED accounts are retried. Default 5s.
	RetryFrequency time.Duration
	// MaxRetries: how many times a FAILED account is retried. Default 3.
	MaxRetries int
	// CommandTimeout bounds an agent's answer to AddAccounts or
	// DeleteAccounts. Default 30s.
	CommandTimeout time.Duration
	// ClaimTimeout: a transient state (ACTIVATING, DEACTIVATING, DELETING)
	// claimed by a replica longer ago than this is taken over. Default
	// 2 x CommandTimeout.
	ClaimTimeout time.Duration
	// OrphanGrace: after the reconciler starts, and after an account's row
	// changed, ACTIVE accounts are not declared ORPHANED for this long, so
	// agents can reconnect. Default 15s.
	OrphanGrace time.Duration
	// ReplicaID identifies this control-plane replica in claims.
	ReplicaID string
	Log       *slog.Logger
	// Metrics receives the feature's metrics (nil: none).
	Metrics prometheus.Registerer
}

func (c *Config) defaults() {
	if c.RetryFrequency <= 0 {
		c.RetryFrequency = 5 * time.Second
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 30 * time.Second
	}
	if c.ClaimTimeout <= 0 {
		c.ClaimTimeout = 2 * c.CommandTimeout
	}
	if c.OrphanGrace <= 0 {
		c.OrphanGrace = 15 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Agents is what the manager needs of the control plane's agent sessions.
type Agents interface {
	// ConnectedAgents: this replica's agents live, the other replicas'
	// as of the last refresh of the cluster view (it lags).
	ConnectedAgents() []controlplane.AgentInfo
	// ClusterAgents: every replica's agents as the database records them
	// at the call (see reconcile).
	ClusterAgents(ctx context.Context) ([]controlplane.AgentInfo, error)
	AgentsChanged() <-chan struct{}
	SendAccountCommand(ctx context.Context, agentID string, cmd *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error)
}

// Credentials turns an account's credential fields into what is stored and
// what is sent to agents. Errors name the field and never hold content.
type Credentials interface {
	// Store validates d's credential fields and returns what the row keeps:
	// a reference (secret reference, file path) and sealed inline content.
	Store(ctx context.Context, d Definition) (ref, sealed string, err error)
	// Resolve returns the kubeconfig content for the agent: nil when the
	// agent uses its service account or its own file (kubeconfigAgent).
	Resolve(ctx context.Context, d Definition, ref, sealed string) ([]byte, error)
}

// Manager is the feature: REST routes and the reconciler.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	st      store.Accounts
	agent   Agents
	creds   Credentials
	metrics *metrics

	wake chan struct{} // REST changes wake the reconciler; capacity 1

	mu       sync.Mutex // guards inFlight
	inFlight map[string]bool
	started  time.Time
	commands atomic.Int64 // command id sequence
}

// New returns a manager; register it with the control plane server with
// Server.Extend.
func New(cfg Config, st store.Accounts, agents Agents, creds Credentials) *Manager {
	cfg.defaults()
	return &Manager{cfg: cfg, log: cfg.Log, st: st, agent: agents, creds: creds, metrics: newMetrics(cfg.Metrics),
		wake: make(chan struct{}, 1), inFlight: map[string]bool{}}
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if !m.cfg.Enabled {
		<-ctx.Done()
		return nil
	}
	m.started = time.Now()
	tick := time.NewTicker(min(m.cfg.RetryFrequency, time.Second))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	// A database outage fails every pass: its error once, then every 30 s.
	errs := logrepeat.New(m.log, slog.LevelError, "dynamic accounts: reconcile")
	for {
		switch err := m.reconcile(ctx, &wg); {
		case err != nil && ctx.Err() == nil:
			errs.Failed(err)
		case err == nil:
			errs.OK()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-m.wake:
		case <-m.agent.AgentsChanged():
		}
	}
}

// holders maps each account to the connected agents serving it.
func holders(agents []controlplane.AgentInfo) map[string][]string {
	out := map[string][]string{}
	for _, a := range agents {
		for _, name := range a.Accounts {
			out[name] = append(out[name], a.ID)
		}
	}
	return out
}

// reconcile looks at every row once and starts the work each needs.
func (m *Manager) reconcile(ctx context.Context, wg *sync.WaitGroup) error {
	// Every row's state, cheaply; the whole row only of the few that need
	// something done, and only if still as read (full).
	rows, err := m.st.AccountStates(ctx)
	if err != nil {
		return err
	}
	m.metrics.observe(rows)
	// Rows to migrate, deactivate or remove come in bursts (an import of
	// a thousand accounts): read those whole in one query.
	var bulk map[string]store.Account
	if slices.ContainsFunc(rows, func(a store.Account) bool {
		return a.State == ToMigrate || a.State == ToDeactivate || a.State == Deleting
	}) {
		whole, err := m.st.ListAccounts(ctx, ToMigrate, ToDeactivate, Deleting)
		if err != nil {
			return err
		}
		bulk = make(map[string]store.Account, len(whole))
		for _, a := range whole {
			bulk[a.Name] = a
		}
	}
	full := func(st store.Account) (store.Account, bool) {
		a, ok := bulk[st.Name]
		if !ok {
			var err error
			if a, err = m.st.GetAccount(ctx, st.Name); err != nil {
				return a, false
			}
		}
		return a, a.Version == st.Version // else changed since: the next pass sees it
	}
	// Who is connected, and what each agent serves. Every replica holds
	// some agents' streams and sees the others' through its cluster view,
	// refreshed every AssignInterval: up to that old, and older than a
	// row another replica changed because of an agent it just received
	// (ORPHANED -> TO_MIGRATE) or just lost (ACTIVE -> ORPHANED). Deciding
	// on that view failed activations while the agent was connected and
	// put ORPHANED accounts back to ACTIVE after their agent had left.
	//
	// So every decision that depends on agents rests on the database's
	// sessions and agent accounts (ClusterAgents), read after the rows
	// being judged: a replica records an agent's session before acting on
	// it and removes it before forgetting it, and records what an agent
	// serves before reporting an activation, so that read is never older
	// than the state change it judges, whichever replica made it. The
	// view only spares that read when it cannot lead to a decision: an
	// ACTIVE account the view sees served (if its holder just left, the
	// next refresh tells, and the holder's own replica saw it go), an
	// ORPHANED one the view sees no agent for (the next refresh shows a
	// new agent; its own replica saw it at once).
	view := m.agent.ConnectedAgents()
	seen := holders(view)
	var (
		agents  []controlplane.AgentInfo
		held    map[string][]string
		readErr error
		read    bool
	)
	fresh := func() bool {
		if !read {
			read = true
			if agents, readErr = m.agent.ClusterAgents(ctx); readErr == nil {
				held = holders(agents)
			}
		}
		return readErr == nil
	}
	now := time.Now()
	var migrate, deactivate, remove []store.Account
	for _, st := range rows {
		if m.busy(st.Name) {
			continue
		}
		switch st.State {
		case ToMigrate:
			if a, ok := full(st); ok {
				migrate = append(migrate, a)
			}
		case Activating, Deactivating:
			// Claimed by a replica that stopped driving it (died, or this
			// one restarted, as it is not busy with it): hand it back.
			if st.Owner == m.cfg.ReplicaID || now.Sub(st.UpdatedAt) > m.cfg.ClaimTimeout {
				if a, ok := full(st); ok {
					back := map[string]string{Activating: ToMigrate, Deactivating: ToDeactivate}[a.State]
					m.transition(ctx, a, func(a *store.Account) { a.State, a.Owner = back, "" })
				}
			}
		case Deleting:
			// Requested (no owner), or claimed by a replica that stopped.
			if st.Owner == "" || st.Owner == m.cfg.ReplicaID || now.Sub(st.UpdatedAt) > m.cfg.ClaimTimeout {
				if a, ok := full(st); ok {
					remove = append(remove, a)
				}
			}
		case Failed:
			if st.FailedCount <= m.cfg.MaxRetries && now.Sub(st.UpdatedAt) >= m.cfg.RetryFrequency {
				if a, ok := full(st); ok {
					m.transition(ctx, a, func(a *store.Account) { a.State = ToMigrate })
				}
			}
		case Active:
			// Not while agents may still be reconnecting: after this
			// replica started (agents of a restarted cluster) and after
			// the row changed (an agent that just served it).
			if len(seen[st.Name]) == 0 && now.Sub(m.started) > m.cfg.OrphanGrace && now.Sub(st.UpdatedAt) > m.cfg.OrphanGrace &&
				fresh() && len(held[st.Name]) == 0 {
				if a, ok := full(st); ok {
					m.transition(ctx, a, func(a *store.Account) {
						a.State, a.ErrorMessage = Orphaned, "no connected agent serves the account"
					})
				}
			}
		case Orphaned:
			if len(seen[st.Name]) == 0 && len(eligible(view, st.ZoneID)) == 0 || !fresh() {
				continue
			}
			switch {
			case len(held[st.Name]) > 0:
				if a, ok := full(st); ok {
					m.transition(ctx, a, func(a *store.Account) {
						a.State, a.AgentID, a.ErrorMessage, a.FailedCount = Active, held[a.Name][0], "", 0
					})
				}
			case len(seen[st.Name]) > 0:
				// The view has an agent holding it that the database does
				// not have yet: one reconnecting (in this replica's registry
				// before its session is recorded). Wait for the record
				// rather than send the account to another agent.
			case len(eligible(agents, st.ZoneID)) > 0:
				if a, ok := full(st); ok {
					m.transition(ctx, a, func(a *store.Account) { a.State, a.ErrorMessage = ToMigrate, "" })
				}
			}
		case ToDeactivate:
			if a, ok := full(st); ok {
				deactivate = append(deactivate, a)
			}
		}
	}
	if len(migrate)+len(deactivate)+len(remove) > 0 && !fresh() {
		// Nothing claimed: the next pass tries again.
		return readErr
	}
	// Stopping an account is asked of every agent either source says
	// serves it: one that does not, or is gone, answers success.
	stop := union(held, seen)
	m.start(ctx, wg, migrate, Activating, func(ctx context.Context, claimed []store.Account) { m.activate(ctx, claimed, agents) })
	m.start(ctx, wg, deactivate, Deactivating, func(ctx context.Context, claimed []store.Account) { m.deactivate(ctx, claimed, stop) })
	m.start(ctx, wg, remove, Deleting, func(ctx context.Context, claimed []store.Account) { m.remove(ctx, claimed, stop) })
	return readErr
}

// union merges two holders maps, each agent once per account.
func union(a, b map[string][]string) map[string][]string {
	out := make(map[string][]string, len(a))
	for _, m := range []map[string][]string{a, b} {
		for account, agents := range m {
			for _, id := range agents {
				if !slices.Contains(out[account], id) {
					out[account] = append(out[account], id)
				}
			}
		}
	}
	return out
}

func (m *Manager) busy(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inFlight[name]
}

// start claims rows (state -> claimState, owner = this replica) and runs
// work on the claimed ones in the background.
func (m *Manager) start(ctx context.Context, wg *sync.WaitGroup, rows []store.Account, claimState string, work func(context.Context, []store.Account)) {
	var claimed []store.Account
	for _, a := range rows {
		a.State, a.Owner = claimState, m.cfg.ReplicaID
		c, err := m.st.UpdateAccount(ctx, a)
		if err != nil {
			if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
				m.log.Error("dynamic accounts: claim", "account", a.Name, "err", err)
			}
			continue // another replica, or a REST call, got there first
		}
		claimed = append(claimed, c)
	}
	if len(claimed) == 0 {
		return
	}
	m.mu.Lock()
	for _, a := range claimed {
		m.inFlight[a.Name] = true
	}
	m.mu.Unlock()
	wg.Go(func() {
		defer func() {
			m.mu.Lock()
			for _, a := range claimed {
				delete(m.inFlight, a.Name)
			}
			m.mu.Unlock()
			m.poke()
		}()
		work(ctx, claimed)
	})
}

// transition applies change to a and writes it, ignoring lost races.
func (m *Manager) transition(ctx context.Context, a store.Account, change func(*store.Account)) (store.Account, bool) {
	from := a.State
	change(&a)
	out, err := m.st.UpdateAccount(ctx, a)
	if err != nil {
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			m.log.Error("dynamic accounts: update", "account", a.Name, "err", err)
		}
		return store.Account{}, false
	}
	if from != out.State {
		level := slog.LevelInfo
		if out.State == Failed || out.State == DeleteFailed {
			level = slog.LevelWarn // needs an operator once retries are spent
		}
		m.log.Log(ctx, level, "dynamic account", "account", out.Name, "from", from, "to", out.State, "error", out.ErrorMessage)
	}
	return out, true
}

// eligible returns the agents that may take an account of zone: those of
// the zone, or every agent accepting dynamic accounts when zone is empty.
func eligible(agents []controlplane.AgentInfo, zone string) []controlplane.AgentInfo {
	var out []controlplane.AgentInfo
	for _, a := range agents {
		if a.DynamicAccounts && (zone == "" || a.ZoneID == zone) {
			out = append(out, a)
		}
	}
	return out
}

func (m *Manager) commandID() string {
	return fmt.Sprintf("%s-%d-%d", m.cfg.ReplicaID, time.Now().UnixNano(), m.commands.Add(1))
}

func encodeBase64(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Routes registers the REST API.
func (m *Manager) Routes(mux *http.ServeMux) { m.routes(mux) }
