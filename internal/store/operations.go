package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const opsTable = "kubesvc_ops_history"

const opColumns = `id, account, op_type, agent_id, controlplane_id, state, error_message, request, result,
	received_at_ms, sent_at_ms, finished_at_ms`

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

func scanOperation(sc interface{ Scan(...any) error }) (Operation, error) {
	var o Operation
	var req, res string
	var received, sent, finished int64
	if err := sc.Scan(&o.ID, &o.Account, &o.Type, &o.AgentID, &o.ControlPlaneID, &o.State, &o.ErrorMessage,
		&req, &res, &received, &sent, &finished); err != nil {
		return Operation{}, err
	}
	o.Request, o.Result = []byte(req), []byte(res)
	o.ReceivedAt, o.SentAt, o.FinishedAt = fromMs(received), fromMs(sent), fromMs(finished)
	return o, nil
}

// CreateOperation records a new operation.
func (s *sqlStore) CreateOperation(ctx context.Context, op Operation) error {
	if op.ID == "" || len(op.ID) > 253 {
		return fmt.Errorf("store: create operation: %w: id empty or longer than 253 characters", ErrInvalidChange)
	}
	// One statement: a repeated id violates the primary key.
	_, err := exec(ctx, s.w, s.d.rebind(`INSERT INTO `+opsTable+` (`+opColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		op.ID, op.Account, op.Type, op.AgentID, op.ControlPlaneID, op.State, storableText(op.ErrorMessage), string(op.Request), string(op.Result),
		ms(op.ReceivedAt), ms(op.SentAt), ms(op.FinishedAt))
	if err != nil && isUniqueViolation(err) {
		return fmt.Errorf("store: create operation: operation %q: %w", op.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create operation: %w", err)
	}
	return nil
}

// GetOperation returns the operation id.
func (s *sqlStore) GetOperation(ctx context.Context, id string) (Operation, error) {
	o, err := scanOperation(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+opColumns+` FROM `+opsTable+` WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Operation{}, fmt.Errorf("store: operation %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Operation{}, fmt.Errorf("store: get operation %q: %w", id, err)
	}
	return o, nil
}

// UpdateOperation writes the mutable fields if the state is fromState.
func (s *sqlStore) UpdateOperation(ctx context.Context, op Operation, fromState string) error {
	res, err := exec(ctx, s.w, s.d.rebind(`UPDATE `+opsTable+` SET agent_id = ?, state = ?, error_message = ?,
	result = ?, sent_at_ms = ?, finished_at_ms = ? WHERE id = ? AND state = ?`),
		op.AgentID, op.State, storableText(op.ErrorMessage), string(op.Result), ms(op.SentAt), ms(op.FinishedAt), op.ID, fromState)
	if err != nil {
		return fmt.Errorf("store: update operation %q: %w", op.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: update operation %q: %w", op.ID, err)
	}
	if n == 0 {
		if _, err := s.GetOperation(ctx, op.ID); errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("store: operation %q is no longer %s: %w", op.ID, fromState, ErrConflict)
	}
	return nil
}

// ListOperations returns the newest operations first, a page of them.
func (s *sqlStore) ListOperations(ctx context.Context, limit, offset int) ([]Operation, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.listOperations(ctx, `SELECT `+opColumns+` FROM `+opsTable+` ORDER BY received_at_ms DESC, id LIMIT ? OFFSET ?`, limit, max(offset, 0))
}

// OperationsInState returns the operations in state, oldest first.
func (s *sqlStore) OperationsInState(ctx context.Context, state string) ([]Operation, error) {
	return s.listOperations(ctx, `SELECT `+opColumns+` FROM `+opsTable+` WHERE state = ? ORDER BY received_at_ms, id`, state)
}

func (s *sqlStore) listOperations(ctx context.Context, q string, args ...any) ([]Operation, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list operations: %w", err)
	}
	defer rows.Close()
	var out []Operation
	for rows.Next() {
		o, err := scanOperation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list operations: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// migrateOpsByState indexes the history by state: every replica looks for
// RUNNING tasks left by stopped replicas every few seconds.
func migrateOpsByState(dialect) []string {
	return []string{`CREATE INDEX kubesvc_ops_history_state ON ` + opsTable + ` (state)`}
}

// PurgeOperations deletes operations received before t.
func (s *sqlStore) PurgeOperations(ctx context.Context, before time.Time) (int, error) {
	var res sql.Result
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+opsTable+` WHERE received_at_ms < ?`), before.UnixMilli())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge operations: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// MarkOperationSent records the agent an operation went to and when,
// touching only those columns, while the operation is RUNNING.
func (s *sqlStore) MarkOperationSent(ctx context.Context, id, agentID string, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, s.d.rebind(`UPDATE `+opsTable+` SET agent_id = ?, sent_at_ms = ? WHERE id = ? AND state = ?`),
		agentID, ms(at), id, "RUNNING"); err != nil {
		return fmt.Errorf("store: mark operation %q sent: %w", id, err)
	}
	return nil
}

// storableText makes s storable in a text column of every dialect: an
// error message may carry NUL bytes or invalid UTF-8 (from a cluster or an
// agent), which PostgreSQL and MySQL refuse, and the outcome it explains
// would be lost with it.
func storableText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}
