package operations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// sweepEvery is how often a replica looks for tasks left RUNNING by a
// replica that stopped.
const sweepEvery = 5 * time.Second

// sweepGrace is added to a task's deadline before another replica ends it.
const sweepGrace = 5 * time.Second

// sweepOrphans fails the tasks whose replica is gone from the cluster
// (killed, or reaped after missing its heartbeats), or is this replica in
// an earlier run, and whose deadline has passed without a result: no task
// stays RUNNING for ever. A result that arrived meanwhile (HandleResult, on
// any replica) has already finished it.
func (m *Manager) sweepOrphans(ctx context.Context) {
	replicas, err := m.st.Replicas(ctx)
	if err != nil {
		m.log.Warn("operations: sweep: read replicas", "err", err)
		return
	}
	live := make([]string, 0, len(replicas))
	for _, r := range replicas {
		live = append(live, r.ID)
	}
	rows, err := m.st.OperationsInState(ctx, Running)
	if err != nil {
		m.log.Warn("operations: sweep: read history", "err", err)
		return
	}
	now := time.Now()
	for _, row := range rows {
		switch {
		case row.ControlPlaneID == m.cfg.ReplicaID:
			if m.running(row.ID) != nil {
				continue // running here
			}
		case slices.Contains(live, row.ControlPlaneID):
			continue
		}
		if now.Before(row.ReceivedAt.Add(m.cfg.Wait*time.Duration(taskOps(row)) + sweepGrace)) {
			continue
		}
		row.State, row.FinishedAt = Failed, now
		row.ErrorMessage = fmt.Sprintf("control-plane replica %s stopped while running the task, and no result arrived within %s (kubesvc.cache.operationWaitMs)",
			row.ControlPlaneID, m.cfg.Wait)
		switch err := m.st.UpdateOperation(ctx, row, Running); {
		case err == nil:
			m.log.Warn("operations: task of a stopped replica failed", "task", row.ID, "replica", row.ControlPlaneID)
			m.metrics.observe(row)
		case errors.Is(err, store.ErrConflict), ctx.Err() != nil:
			// Finished meanwhile (a late result), or stopping.
		default:
			m.log.Error("operations: record the failure of a stopped replica's task; next sweep retries", "task", row.ID, "err", err)
		}
	}
}

// taskOps counts a task's operations from its type ("deployManifest+2").
func taskOps(row store.Operation) int {
	if _, extra, ok := strings.Cut(row.Type, "+"); ok {
		var n int
		if _, err := fmt.Sscanf(extra, "%d", &n); err == nil {
			return n + 1
		}
	}
	return 1
}
