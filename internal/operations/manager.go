package operations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Task states in kubesvc_ops_history.
const (
	Running   = "RUNNING"
	Succeeded = "SUCCEEDED"
	Failed    = "FAILED"
)

// Config configures the operation API.
type Config struct {
	// Wait bounds each operation, from the request to the agent's result
	// and the cache reflecting it (kubesvc.cache.operationWaitMs). Default 30s.
	Wait time.Duration
	// Retention: history rows older than this are purged
	// (kubesvc.jobs.operation-history.purge.weeks). Default one week.
	Retention time.Duration
	// MaxRequestBytes bounds a request body. Default 4 MiB.
	MaxRequestBytes int64
	ReplicaID       string
	Log             *slog.Logger
	// Metrics receives the operations' metrics (nil: none).
	Metrics prometheus.Registerer
}

// Agents is what the manager needs of the control plane.
type Agents interface {
	ConnectedAgents() []controlplane.AgentInfo
	// RouteAccount names the agent to run an account's operations.
	RouteAccount(account string) (agentID string, ok bool)
	SendOperation(ctx context.Context, agentID string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error)
	WaitCached(ctx context.Context, key store.ObjectKey, minRV string) error
}

// Manager runs operation tasks.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	st      store.Store
	agents  Agents
	metrics *metrics

	wg sync.WaitGroup // running tasks; Run waits for them

	mu    sync.Mutex       // guards tasks, stopping, lateSignal
	tasks map[string]*task // the tasks running on this replica
	// stopping: Run is waiting for wg; no more background work starts.
	stopping bool
	// stopped is closed when Run's context ends: runners waiting for a
	// late result leave the task RUNNING for the replica the agent
	// reconnects to (see late.go).
	stopped chan struct{}
	// lateSignal is closed (and replaced) when HandleResult recorded a
	// result, waking the runners in awaitLate.
	lateSignal chan struct{}
}

// New returns a manager; register it with Server.Extend.
func New(cfg Config, st store.Store, agents Agents) *Manager {
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 4 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg, log: cfg.Log, st: st, agents: agents, metrics: newMetrics(cfg.Metrics), tasks: map[string]*task{},
		lateSignal: make(chan struct{}), stopped: make(chan struct{})}
}

// Run purges old history every hour and fails tasks left by stopped
// replicas (sweepOrphans) until ctx ends, then waits for the tasks still
// running (each bounded by Wait).
func (m *Manager) Run(ctx context.Context) error {
	defer func() {
		m.mu.Lock()
		m.stopping = true
		m.mu.Unlock()
		close(m.stopped)
		m.wg.Wait()
	}()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	m.purge(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			m.sweepOrphans(ctx)
		case <-t.C:
			m.purge(ctx)
		}
	}
}

func (m *Manager) purge(ctx context.Context) {
	if n, err := m.st.PurgeOperations(ctx, time.Now().Add(-m.cfg.Retention)); err != nil && ctx.Err() == nil {
		m.log.Error("operations: purge history", "err", err)
	} else if n > 0 {
		m.log.Info("operations: history purged", "rows", n)
	}
}

// markSentAfter is how long an operation runs before the history records
// the agent it was sent to (see execute).
const markSentAfter = 250 * time.Millisecond

// op is one validated operation of a task.
type op struct {
	Type        string          `json:"type"`
	Account     string          `json:"account"`
	Description json.RawMessage `json:"description"`
}

// taskResult is what kubesvc_ops_history.result holds for a task.
type taskResult struct {
	Results []json.RawMessage `json:"results"`
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// start records the task and runs it in the background. With a
// clientRequestId already used, it returns that task without running.
func (m *Manager) start(ctx context.Context, id string, ops []op) (string, error) {
	if id == "" {
		id = newID()
	}
	req := historyRequest(ops)
	typ := ops[0].Type
	if len(ops) > 1 {
		typ = fmt.Sprintf("%s+%d", typ, len(ops)-1)
	}
	row := store.Operation{ID: id, Account: ops[0].Account, Type: typ, ControlPlaneID: m.cfg.ReplicaID,
		State: Running, Request: req, ReceivedAt: time.Now()}
	if m.isStopping() {
		return "", errStopping
	}
	if err := m.st.CreateOperation(ctx, row); err != nil {
		if errors.Is(err, store.ErrExists) {
			return id, nil // idempotent: the same clientRequestId runs once
		}
		return "", err
	}
	t := &task{done: make(chan struct{})}
	m.mu.Lock()
	stopping := m.stopping
	if !stopping { // else Run may be past wg.Wait
		m.tasks[id] = t
		m.wg.Go(func() {
			defer func() {
				m.mu.Lock()
				delete(m.tasks, id)
				m.mu.Unlock()
				close(t.done)
			}()
			t.final, t.recorded = m.run(row, ops)
		})
	}
	m.mu.Unlock()
	if stopping {
		// Run began stopping while the task was recorded: it is not
		// sent, and says so (never a silent loss).
		m.finish(row, Failed, "the control plane stopped before the task was sent to an agent; send it again", nil)
	}
	return id, nil
}

// errStopping: the replica is shutting down and starts no task.
var errStopping = errors.New("operations: shutting down")

func (m *Manager) isStopping() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopping
}

// task is a task running on this replica.
type task struct {
	done chan struct{} // closed when it ends
	// Set before done is closed: the row as this replica recorded it at
	// the end, when recorded (a waiter answers with it rather than read
	// it back).
	final    store.Operation
	recorded bool
}

// run executes a task's operations in order; the first failure ends it. It
// returns the final row if this replica recorded the outcome.
func (m *Manager) run(row store.Operation, ops []op) (store.Operation, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Wait*time.Duration(len(ops)))
	defer cancel()
	var results []json.RawMessage
	for i, o := range ops {
		res, err := m.execute(ctx, &row, i, o, results)
		if errors.Is(err, errFinishedElsewhere) || errors.Is(err, errAbandoned) {
			return store.Operation{}, false
		}
		if err != nil {
			return m.finish(row, Failed, failure(o, i, err.Error()), results)
		}
		results = append(results, res)
	}
	return m.finish(row, Succeeded, "", results)
}

// finish records the task's outcome and returns the row, and whether it
// was recorded by this call.
func (m *Manager) finish(row store.Operation, state, msg string, results []json.RawMessage) (store.Operation, bool) {
	row.State, row.ErrorMessage, row.FinishedAt = state, msg, time.Now()
	row.Result, _ = json.Marshal(taskResult{Results: results})
	// A fresh context: the task's own may have run out, and its outcome
	// must still be recorded (never a silent loss).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.st.UpdateOperation(ctx, row, Running); errors.Is(err, store.ErrConflict) {
		// HandleResult finished it from a result resent after a reconnect.
		m.log.Info("operations: task already finished from a late result", "task", row.ID, "outcome here", state)
		return row, false
	} else if err != nil {
		m.log.Error("operations: record outcome", "task", row.ID, "err", err)
		return row, false
	}
	m.log.Log(context.Background(), finishedLevel(state), "operation finished", "task", row.ID, "type", row.Type, "account", row.Account, "state", state,
		"duration", row.FinishedAt.Sub(row.ReceivedAt).Round(time.Millisecond), "error", msg)
	m.metrics.observe(row)
	return row, true
}

// finishedLevel logs failed operations as warnings.
func finishedLevel(state string) slog.Level {
	if state == Failed {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// execute routes operation i of a task to an agent serving its account,
// waits for the result, then for the cache to reflect the applied objects.
// results are those of the operations before it.
func (m *Manager) execute(ctx context.Context, row *store.Operation, i int, o op, results []json.RawMessage) (json.RawMessage, error) {
	agentID, ok := m.agents.RouteAccount(o.Account)
	if !ok {
		return nil, fmt.Errorf("no connected agent serves account %q", o.Account)
	}
	row.AgentID = agentID
	if i == 0 {
		// Record the hop, so the history shows where an operation that
		// takes a while is: off the operation's path, and only once it
		// has run for markSentAfter, as the outcome's write records the
		// hop too and most operations end sooner.
		row.SentAt = time.Now()
		stop, marked := make(chan struct{}), make(chan struct{})
		defer func() { close(stop); <-marked }()
		id, at := row.ID, row.SentAt
		go func() {
			defer close(marked)
			m.markSentLater(ctx, stop, id, agentID, at)
		}()
	} else {
		// Progress: the results so far, for a result of this operation
		// that arrives through HandleResult (see late.go), and the agent
		// it goes to.
		row.Result, _ = json.Marshal(taskResult{Results: results})
		if err := m.st.UpdateOperation(ctx, *row, Running); err != nil {
			m.log.Warn("operations: record progress", "task", row.ID, "err", err)
		}
	}
	deadline, _ := ctx.Deadline()
	opMsg := &kubesvcv1.Operation{
		Id: opID(row.ID, i), Account: o.Account, Type: o.Type, Payload: o.Description, DeadlineMs: deadline.UnixMilli(),
	}
	res, err := m.agents.SendOperation(ctx, agentID, opMsg)
	for errors.Is(err, controlplane.ErrAgentGone) {
		// The agent, or the replica it was reached through, went away.
		// The agent keeps a result it produced and sends it again when it
		// is back (maybe to another replica): watch the history for it.
		// Meanwhile, once the account is served again, send the operation
		// again: an agent that already has it does not run it twice
		// (operation ids are remembered), one that never got it runs it.
		m.log.Info("operations: agent or its replica went away before answering; waiting for the result or a new route",
			"task", row.ID, "agent", agentID, "err", err)
		res, err = m.awaitLateOrRoute(ctx, row.ID, i, agentID, o.Account, opMsg)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %s waiting for agent %s (kubesvc.cache.operationWaitMs)", m.cfg.Wait, agentID)
		}
		return nil, err
	}
	if !res.GetSuccess() {
		return nil, errors.New(res.GetError())
	}
	if err := m.reflect(ctx, o.Account, res); err != nil {
		return nil, err
	}
	return res.GetPayload(), nil
}

// markSentLater records the agent the first operation of a task went to,
// unless the operation ends (stop) or the task does (ctx) within
// markSentAfter. The write touches only the hop's columns, while RUNNING.
func (m *Manager) markSentLater(ctx context.Context, stop <-chan struct{}, id, agentID string, at time.Time) {
	t := time.NewTimer(markSentAfter)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-stop:
		return
	case <-t.C:
	}
	if err := m.st.MarkOperationSent(ctx, id, agentID, at); err != nil && ctx.Err() == nil {
		m.log.Warn("operations: record the send", "task", id, "err", err)
	}
}

// reflect waits until the cache holds every applied object of a result
// whose kind the account caches, at the applied resourceVersion or later.
// The agent names those objects (res.cached); from one that does not, the
// manifests of the result are checked against the account's streams.
func (m *Manager) reflect(ctx context.Context, account string, res *kubesvcv1.OperationResult) error {
	keys, err := m.cachedObjects(ctx, account, res)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.agents.WaitCached(ctx, k.key, k.rv); err != nil {
			return fmt.Errorf("applied, but the cache did not reflect %s %s/%s in time: %w", k.key.Kind, k.key.Namespace, k.key.Name, err)
		}
	}
	return nil
}

type cachedObject struct {
	key store.ObjectKey
	rv  string
}

// cachedObjects lists the objects of res the cache must reflect.
func (m *Manager) cachedObjects(ctx context.Context, account string, res *kubesvcv1.OperationResult) ([]cachedObject, error) {
	if c := res.GetCached(); c != nil {
		out := make([]cachedObject, 0, len(c.GetObjects()))
		for _, o := range c.GetObjects() {
			out = append(out, cachedObject{key: store.ObjectKey{Account: account, Group: o.GetGroup(), Kind: o.GetKind(),
				Namespace: o.GetNamespace(), Name: o.GetName()}, rv: o.GetResourceVersion()})
		}
		return out, nil
	}
	var r struct {
		Manifests []struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name, Namespace, ResourceVersion string
			} `json:"metadata"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(res.GetPayload(), &r); err != nil || len(r.Manifests) == 0 {
		return nil, nil
	}
	streams, err := m.st.Streams(ctx, []string{account})
	if err != nil {
		return nil, err
	}
	cached := map[string]bool{}
	for _, s := range streams {
		if kubesvcv1.IsSyntheticSelector(s.Stream.SelectorHash) {
			continue // synthetic objects carry no resource version to wait for
		}
		cached[s.Stream.Resource.Group+"/"+s.Stream.Resource.Kind] = true
	}
	var out []cachedObject
	for _, mf := range r.Manifests {
		group := ""
		if g, _, ok := cutLast(mf.APIVersion, "/"); ok {
			group = g
		}
		if !cached[group+"/"+mf.Kind] || mf.Metadata.ResourceVersion == "" {
			continue
		}
		out = append(out, cachedObject{key: store.ObjectKey{Account: account, Group: group, Kind: mf.Kind,
			Namespace: mf.Metadata.Namespace, Name: mf.Metadata.Name}, rv: mf.Metadata.ResourceVersion})
	}
	return out, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// running returns task id if it runs on this replica, else nil.
func (m *Manager) running(id string) *task {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tasks[id]
}
