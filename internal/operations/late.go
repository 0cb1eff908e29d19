package operations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Results that arrive late.
//
// An agent keeps an operation's result until the control plane
// acknowledges it and sends it again on its next session
// (clouddriver.responseRetries.*), possibly to another replica. Such a
// result finds no SendOperation waiting for it; the session hands it to
// HandleResult, which records it in kubesvc_ops_history. The task's runner,
// told by SendOperation that the agent disconnected before answering, keeps
// watching the history row until the task's deadline (awaitLate).

// latePoll is how often a runner whose agent disconnected reads the task's
// row; results recorded by this replica wake it at once.
const latePoll = 250 * time.Millisecond

// errFinishedElsewhere: the task was finished by HandleResult (on this or
// another replica); its runner has nothing left to record.
var errFinishedElsewhere = errors.New("task finished from a result that arrived after a reconnect")

// errAbandoned: this replica is stopping while the task waits for a late
// result; the task stays RUNNING for the replica that receives it.
var errAbandoned = errors.New("replica stopping; the task is left to the replica that receives its result")

// opID is the id of a task's i-th operation on the wire.
func opID(task string, i int) string { return fmt.Sprintf("%s/%d", task, i) }

func parseOpID(id string) (task string, i int, ok bool) {
	task, n, found := cutLast(id, "/")
	if !found || task == "" {
		return "", 0, false
	}
	i, err := strconv.Atoi(n)
	return task, i, err == nil && i >= 0
}

// HandleResult implements controlplane.UnclaimedResults. If the result's
// task is still running: a failure finishes it FAILED; a success of its
// last operation finishes it SUCCEEDED once the cache reflects the result
// (in the background: the caller is the agent's session, which must keep
// ingesting); a success of an earlier operation is recorded as progress for
// the task's runner to continue from. Results of finished tasks, unknown
// tasks and duplicates are ignored. Every update is conditional on the row
// still being RUNNING.
func (m *Manager) HandleResult(ctx context.Context, agentID string, res *kubesvcv1.OperationResult) error {
	taskID, i, ok := parseOpID(res.GetId())
	if !ok {
		m.log.Warn("operations: result with a malformed id ignored", "agent", agentID, "operation", res.GetId())
		return nil
	}
	row, err := m.st.GetOperation(ctx, taskID)
	if errors.Is(err, store.ErrNotFound) {
		m.log.Warn("operations: result of an unknown task ignored", "agent", agentID, "operation", res.GetId())
		return nil
	}
	if err != nil {
		return fmt.Errorf("operations: read task %s: %w", taskID, err)
	}
	var ops []op
	var tr taskResult
	_ = json.Unmarshal(row.Request, &ops)
	_ = json.Unmarshal(row.Result, &tr)
	if row.State != Running || i >= len(ops) || i != len(tr.Results) {
		// Finished (answered in time, failed, timed out), or a duplicate
		// of an operation whose result is already recorded.
		m.log.Info("operations: late result of a finished operation ignored", "agent", agentID, "operation", res.GetId(), "state", row.State)
		return nil
	}
	o := ops[i]
	m.log.Info("operations: result received after a reconnect", "agent", agentID, "operation", res.GetId(), "success", res.GetSuccess())
	switch {
	case !res.GetSuccess():
		return m.finishLate(ctx, row, Failed, failure(o, i, res.GetError()), tr.Results)
	case i < len(ops)-1:
		row.Result, _ = json.Marshal(taskResult{Results: append(tr.Results, res.GetPayload())})
		if err := m.st.UpdateOperation(ctx, row, Running); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("operations: record the result of %s: %w", res.GetId(), err)
		}
		m.wakeLate()
		return nil
	}
	deadline := row.ReceivedAt.Add(m.cfg.Wait * time.Duration(len(ops)))
	results := append(tr.Results, res.GetPayload())
	return m.background(func() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		state, msg := Succeeded, ""
		if err := m.reflect(ctx, o.Account, res); err != nil {
			state, msg = Failed, failure(o, i, err.Error())
		}
		if err := m.finishLate(ctx, row, state, msg, results); err != nil {
			m.log.Error("operations: record a late result", "task", row.ID, "err", err)
		}
	})
}

// failure is a failed task's message.
func failure(o op, i int, err string) string {
	return fmt.Sprintf("%s (operation %d, %s): %s", o.Type, i, o.Account, err)
}

// finishLate ends a task from HandleResult, unless it ended meanwhile.
func (m *Manager) finishLate(ctx context.Context, row store.Operation, state, msg string, results []json.RawMessage) error {
	row.State, row.ErrorMessage, row.FinishedAt = state, msg, time.Now()
	row.Result, _ = json.Marshal(taskResult{Results: results})
	err := m.st.UpdateOperation(ctx, row, Running)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("operations: finish task %s: %w", row.ID, err)
	}
	if err == nil {
		m.log.Log(ctx, finishedLevel(state), "operation finished", "task", row.ID, "type", row.Type, "account", row.Account, "state", state,
			"duration", row.FinishedAt.Sub(row.ReceivedAt).Round(time.Millisecond), "error", msg, "late", true)
		m.metrics.observe(row)
	}
	m.wakeLate()
	return nil
}

// background runs f in a goroutine Run waits for; it refuses once Run is
// stopping (the agent then sends the result again elsewhere).
func (m *Manager) background(f func()) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping {
		return errStopping
	}
	m.wg.Go(f)
	return nil
}

// wakeLate wakes the runners waiting in awaitLate.
func (m *Manager) wakeLate() {
	m.mu.Lock()
	close(m.lateSignal)
	m.lateSignal = make(chan struct{})
	m.mu.Unlock()
}

// awaitLate waits, after the agent disconnected before answering operation
// i of the task, for its result to reach the history (HandleResult, on any
// replica sharing the database) until ctx's deadline. It returns the
// recorded result of an operation the task's runner continues after,
// errFinishedElsewhere when HandleResult finished the task, or
// errAbandoned when this replica stops first.
func (m *Manager) awaitLate(ctx context.Context, taskID string, i int, agentID string) (*kubesvcv1.OperationResult, error) {
	t := time.NewTicker(latePoll)
	defer t.Stop()
	for {
		m.mu.Lock()
		wake := m.lateSignal
		m.mu.Unlock()
		row, err := m.st.GetOperation(ctx, taskID)
		if err == nil {
			var tr taskResult
			_ = json.Unmarshal(row.Result, &tr)
			switch {
			case row.State != Running:
				return nil, errFinishedElsewhere
			case len(tr.Results) > i:
				return &kubesvcv1.OperationResult{Id: opID(taskID, i), Success: true, Payload: tr.Results[i]}, nil
			}
		} else if ctx.Err() == nil {
			m.log.Warn("operations: read the task while its agent is away", "task", taskID, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent %s disconnected before answering and no result arrived within %s (kubesvc.cache.operationWaitMs)",
				agentID, m.cfg.Wait)
		case <-m.stopped:
			m.log.Info("operations: stopping; the task stays RUNNING until its agent delivers the result", "task", taskID, "agent", agentID)
			return nil, errAbandoned
		case <-wake:
		case <-t.C:
		}
	}
}

// rerouteEvery is how often a task whose agent went away looks for the
// account's new route while it waits for a late result.
const rerouteEvery = 500 * time.Millisecond

// awaitLateOrRoute waits for a late result of operation i (see awaitLate)
// for up to rerouteEvery at a time; between waits, when the account is
// served again, it sends op again and returns that attempt's outcome
// (ErrAgentGone again sends the caller back here). At ctx's deadline it
// fails like awaitLate.
func (m *Manager) awaitLateOrRoute(ctx context.Context, taskID string, i int, agentID, account string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, rerouteEvery)
		res, err := m.awaitLate(wctx, taskID, i, agentID)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, errFinishedElsewhere) || errors.Is(err, errAbandoned) {
			if ctx.Err() != nil && err != nil && !errors.Is(err, errFinishedElsewhere) && !errors.Is(err, errAbandoned) {
				return nil, fmt.Errorf("agent %s disconnected before answering and no result arrived within %s (kubesvc.cache.operationWaitMs)", agentID, m.cfg.Wait)
			}
			return res, err
		}
		if next, ok := m.agents.RouteAccount(account); ok {
			if next != agentID && !idempotent(op) {
				// Only the agent that may have run it remembers its id:
				// another one would run it a second time.
				continue
			}
			m.log.Info("operations: sending the operation again", "task", taskID, "agent", next)
			return m.agents.SendOperation(ctx, next, op)
		}
	}
}

// idempotent reports whether running op twice leaves the cluster as once:
// not a job run, nor a deploy of objects named by the API server
// (generateName). Those are sent again only to the agent that had them.
func idempotent(op *kubesvcv1.Operation) bool {
	return op.GetType() != "runJob" && !bytes.Contains(op.GetPayload(), []byte(`"generateName"`))
}
