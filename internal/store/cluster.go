package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

const (
	replicasTable      = "kubesvc_replicas"
	agentSessionsTable = "kubesvc_agent_sessions"
	assignmentsTable   = "kubesvc_assignments"
)

// migrateCluster creates the tables replicas coordinate through: their
// heartbeats, the agent session each holds, and the assignment of every
// account to the one agent session that caches it.
func migrateCluster(d dialect) []string {
	return []string{
		`CREATE TABLE ` + replicasTable + ` (
	id ` + d.key + `,
	base_url ` + d.largeText + `,
	started_at_ms ` + d.bigint + `,
	heartbeat_at_ms ` + d.bigint + `,
	PRIMARY KEY (id)
)` + d.tableSuffix,
		`CREATE TABLE ` + agentSessionsTable + ` (
	agent_id ` + d.key + `,
	session_id ` + d.key + `,
	replica_id ` + d.key + `,
	zone_id ` + d.text + `,
	dynamic_accounts ` + d.boolean + `,
	connected_at_ms ` + d.bigint + `,
	PRIMARY KEY (agent_id)
)` + d.tableSuffix,
		`CREATE INDEX kubesvc_agent_sessions_replica ON ` + agentSessionsTable + ` (replica_id)`,
		`CREATE TABLE ` + assignmentsTable + ` (
	account ` + d.key + `,
	agent_id ` + d.key + `,
	session_id ` + d.key + `,
	replica_id ` + d.key + `,
	assigned_at_ms ` + d.bigint + `,
	PRIMARY KEY (account)
)` + d.tableSuffix,
		`CREATE INDEX kubesvc_assignments_session ON ` + assignmentsTable + ` (session_id)`,
		`CREATE INDEX kubesvc_assignments_agent ON ` + assignmentsTable + ` (agent_id)`,
	}
}

// migrateAgentSessionVersion records the version each agent sent in its
// registration with its session, so that every replica can report it.
// Binaries that write sessions without it still work (the column defaults
// to the empty string): the migration is compatible with them.
func migrateAgentSessionVersion(d dialect) []string {
	return []string{`ALTER TABLE ` + agentSessionsTable + ` ADD COLUMN version ` + d.text}
}

// migrateReplicaTimeout records with each replica's heartbeat the time
// after which its peers may declare it dead (its own replica timeout):
// replicas of different heartbeat periods then judge each other by the
// silent one's timeout, not their own. The column is nullable: binaries
// that write heartbeats without it still work (their rows are judged by
// the reaper's own timeout, as before), so the migration is compatible
// with them.
func migrateReplicaTimeout(d dialect) []string {
	return []string{`ALTER TABLE ` + replicasTable + ` ADD COLUMN timeout_ms BIGINT`}
}

// nullDuration is d in milliseconds, NULL when not positive.
func nullDuration(d time.Duration) sql.NullInt64 {
	if d <= 0 {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: max(d.Milliseconds(), 1), Valid: true}
}

// HeartbeatReplica records r as alive now, with its timeout.
func (s *sqlStore) HeartbeatReplica(ctx context.Context, r Replica) (existed bool, err error) {
	if r.ID == "" {
		return false, fmt.Errorf("store: heartbeat: empty replica id: %w", ErrInvalidChange)
	}
	now := s.now().UnixMilli()
	timeout := nullDuration(r.Timeout)
	err = inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE `+replicasTable+` SET base_url = ?, heartbeat_at_ms = ?, timeout_ms = ? WHERE id = ?`), r.BaseURL, now, timeout, r.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			existed = true
			return err
		}
		existed = false
		_, err = tx.ExecContext(ctx, s.d.rebind(`INSERT INTO `+replicasTable+` (id, base_url, started_at_ms, heartbeat_at_ms, timeout_ms) VALUES (?, ?, ?, ?, ?)`), r.ID, r.BaseURL, now, now, timeout)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: heartbeat of replica %q: %w", r.ID, err)
	}
	return existed, nil
}

// Replicas returns every replica, sorted by id.
func (s *sqlStore) Replicas(ctx context.Context) ([]Replica, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, base_url, started_at_ms, heartbeat_at_ms, timeout_ms FROM `+replicasTable+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: replicas: %w", err)
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		var started, beat int64
		var timeout sql.NullInt64
		if err := rows.Scan(&r.ID, &r.BaseURL, &started, &beat, &timeout); err != nil {
			return nil, fmt.Errorf("store: replicas: %w", err)
		}
		r.StartedAt, r.HeartbeatAt = time.UnixMilli(started), time.UnixMilli(beat)
		if timeout.Valid && timeout.Int64 > 0 {
			r.Timeout = time.Duration(timeout.Int64) * time.Millisecond
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: replicas: %w", err)
	}
	return out, nil
}

// ReapReplicas deletes the replicas silent for longer than their own
// recorded timeout (timeout for those that recorded none) at now, with
// their agent sessions and those sessions' assignments.
func (s *sqlStore) ReapReplicas(ctx context.Context, now time.Time, timeout time.Duration) ([]string, error) {
	var reaped []string
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		reaped = reaped[:0]
		rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT id FROM `+replicasTable+
			` WHERE heartbeat_at_ms < ? - COALESCE(timeout_ms, ?)`+s.d.forUpdate), now.UnixMilli(), timeout.Milliseconds())
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			reaped = append(reaped, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range reaped {
			if err := deleteReplica(ctx, tx, s.d, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reap replicas: %w", err)
	}
	return reaped, nil
}

// RemoveReplica deletes a replica with its sessions and their assignments.
func (s *sqlStore) RemoveReplica(ctx context.Context, id string) error {
	if err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error { return deleteReplica(ctx, tx, s.d, id) }); err != nil {
		return fmt.Errorf("store: remove replica %q: %w", id, err)
	}
	return nil
}

func deleteReplica(ctx context.Context, tx *sql.Tx, d dialect, id string) error {
	for _, q := range []string{
		`DELETE FROM ` + assignmentsTable + ` WHERE replica_id = ?`,
		`DELETE FROM ` + agentSessionsTable + ` WHERE replica_id = ?`,
		`DELETE FROM ` + replicasTable + ` WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, d.rebind(q), id); err != nil {
			return err
		}
	}
	return nil
}

// PutAgentSession records s as its agent's live session. The assignments of
// the agent's previous session move to s: an agent has one stream at a
// time, so its new session proves the old one is over.
func (s *sqlStore) PutAgentSession(ctx context.Context, sess AgentSession) (*AgentSession, []string, error) {
	if sess.AgentID == "" || sess.SessionID == "" || sess.ReplicaID == "" {
		return nil, nil, fmt.Errorf("store: put agent session: agent, session and replica ids are required: %w", ErrInvalidChange)
	}
	var replaced *AgentSession
	var inherited []string
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		replaced, inherited = nil, nil
		var old AgentSession
		var at int64
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT agent_id, session_id, replica_id, zone_id, version, dynamic_accounts, connected_at_ms FROM `+
			agentSessionsTable+` WHERE agent_id = ?`+s.d.forUpdate), sess.AgentID).Scan(&old.AgentID, &old.SessionID, &old.ReplicaID, &old.ZoneID, &old.Version, &old.DynamicAccounts, &at)
		switch {
		case err == nil:
			old.ConnectedAt = time.UnixMilli(at)
			replaced = &old
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		// An UPDATE, not a DELETE and an INSERT: a replica waiting on the
		// row lock meanwhile then reads this session when it gets the
		// row (PostgreSQL follows an updated row; a deleted one is gone,
		// and the inserted one is not in that statement's view).
		q := `UPDATE ` + agentSessionsTable + ` SET session_id = ?, replica_id = ?, zone_id = ?, version = ?, dynamic_accounts = ?, connected_at_ms = ? WHERE agent_id = ?`
		if replaced == nil {
			q = `INSERT INTO ` + agentSessionsTable + ` (session_id, replica_id, zone_id, version, dynamic_accounts, connected_at_ms, agent_id) VALUES (?, ?, ?, ?, ?, ?, ?)`
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), sess.SessionID, sess.ReplicaID, sess.ZoneID, cutText(sess.Version),
			sess.DynamicAccounts, sess.ConnectedAt.UnixMilli(), sess.AgentID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE `+assignmentsTable+` SET session_id = ?, replica_id = ? WHERE agent_id = ?`), sess.SessionID, sess.ReplicaID, sess.AgentID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT account FROM `+assignmentsTable+` WHERE session_id = ? ORDER BY account`), sess.SessionID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				return err
			}
			inherited = append(inherited, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: put session of agent %q: %w", sess.AgentID, err)
	}
	return replaced, inherited, nil
}

// RemoveAgentSession deletes the agent's session if it is still sessionID,
// and every assignment of sessionID.
func (s *sqlStore) RemoveAgentSession(ctx context.Context, agentID, sessionID string) error {
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+assignmentsTable+` WHERE session_id = ?`), sessionID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+agentSessionsTable+` WHERE agent_id = ? AND session_id = ?`), agentID, sessionID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: remove session of agent %q: %w", agentID, err)
	}
	return nil
}

// AgentSessions returns every recorded session, sorted by agent id.
func (s *sqlStore) AgentSessions(ctx context.Context) ([]AgentSession, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT agent_id, session_id, replica_id, zone_id, version, dynamic_accounts, connected_at_ms FROM `+agentSessionsTable+` ORDER BY agent_id`)
	if err != nil {
		return nil, fmt.Errorf("store: agent sessions: %w", err)
	}
	defer rows.Close()
	var out []AgentSession
	for rows.Next() {
		var a AgentSession
		var at int64
		if err := rows.Scan(&a.AgentID, &a.SessionID, &a.ReplicaID, &a.ZoneID, &a.Version, &a.DynamicAccounts, &at); err != nil {
			return nil, fmt.Errorf("store: agent sessions: %w", err)
		}
		a.ConnectedAt = time.UnixMilli(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: agent sessions: %w", err)
	}
	return out, nil
}

// Assignments returns every assignment, sorted by account.
func (s *sqlStore) Assignments(ctx context.Context) ([]Assignment, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT account, agent_id, session_id, replica_id, assigned_at_ms FROM `+assignmentsTable+` ORDER BY account`)
	if err != nil {
		return nil, fmt.Errorf("store: assignments: %w", err)
	}
	defer rows.Close()
	var out []Assignment
	for rows.Next() {
		var a Assignment
		var at int64
		if err := rows.Scan(&a.Account, &a.AgentID, &a.SessionID, &a.ReplicaID, &at); err != nil {
			return nil, fmt.Errorf("store: assignments: %w", err)
		}
		a.AssignedAt = time.UnixMilli(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: assignments: %w", err)
	}
	return out, nil
}

// claimChunk bounds the accounts of one IN (...) list.
const claimChunk = 500

// ClaimAssignments assigns accounts to sess where free (see Cluster).
func (s *sqlStore) ClaimAssignments(ctx context.Context, sess AgentSession, accounts []string) ([]string, error) {
	accounts = slices.Compact(slices.Sorted(slices.Values(accounts)))
	var claimed []string
	for start := 0; start < len(accounts); start += claimChunk {
		chunk := accounts[start:min(start+claimChunk, len(accounts))]
		var got []string
		err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
			var err error
			got, err = s.claimChunk(ctx, tx, sess, chunk)
			return err
		})
		if err != nil {
			return claimed, fmt.Errorf("store: claim accounts for agent %q: %w", sess.AgentID, err)
		}
		claimed = append(claimed, got...)
	}
	return claimed, nil
}

func (s *sqlStore) claimChunk(ctx context.Context, tx *sql.Tx, sess AgentSession, accounts []string) ([]string, error) {
	var live string
	err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT session_id FROM `+agentSessionsTable+` WHERE agent_id = ?`+s.d.forUpdate), sess.AgentID).Scan(&live)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if live != sess.SessionID {
		return nil, fmt.Errorf("session %s is not the agent's live session: %w", sess.SessionID, ErrConflict)
	}
	in, args := inList(accounts)
	// Assignments of sessions no longer recorded are void.
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+assignmentsTable+` WHERE account IN (`+in+`) AND session_id NOT IN (SELECT session_id FROM `+agentSessionsTable+`)`), args...); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT account, session_id FROM `+assignmentsTable+` WHERE account IN (`+in+`)`+s.d.forUpdate), args...)
	if err != nil {
		return nil, err
	}
	taken := map[string]string{}
	for rows.Next() {
		var account, session string
		if err := rows.Scan(&account, &session); err != nil {
			rows.Close()
			return nil, err
		}
		taken[account] = session
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	ins := s.d.rebind(`INSERT INTO ` + assignmentsTable + ` (account, agent_id, session_id, replica_id, assigned_at_ms) VALUES (?, ?, ?, ?, ?)`)
	var out []string
	for _, a := range accounts {
		session, ok := taken[a]
		if ok {
			if session == sess.SessionID {
				out = append(out, a)
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, ins, a, sess.AgentID, sess.SessionID, sess.ReplicaID, now); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// ReleaseAssignments drops the assignments of accounts held by sessionID
// (any session when empty).
func (s *sqlStore) ReleaseAssignments(ctx context.Context, sessionID string, accounts []string) error {
	for start := 0; start < len(accounts); start += claimChunk {
		chunk := accounts[start:min(start+claimChunk, len(accounts))]
		in, args := inList(chunk)
		q := `DELETE FROM ` + assignmentsTable + ` WHERE account IN (` + in + `)`
		if sessionID != "" {
			q += ` AND session_id = ?`
			args = append(args, sessionID)
		}
		if _, err := s.w.ExecContext(ctx, s.d.rebind(q), args...); err != nil {
			return fmt.Errorf("store: release assignments of session %q: %w", sessionID, err)
		}
	}
	return nil
}

// inList returns "?, ?, ..." for values and the values as arguments.
func inList(values []string) (string, []any) {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", "), args
}

// checkFence fails with ErrFenced unless f is its agent's live session.
// It reads without locking: a lock held for the whole batch would let a
// replica cut off the network in the middle of one block the agent's new
// session (PutAgentSession) on the surviving replica until the database
// ends the dead transaction. A batch already past this check when the new
// session is recorded is caught by recheckFence, just before its commit.
func checkFence(ctx context.Context, tx *sql.Tx, d dialect, f Fence) error {
	return readFence(ctx, tx, d, f, "")
}

// recheckFence checks f again at the end of a batch's transaction, on the
// servers where other transactions run meanwhile: the batch may have
// waited on a row lock while the agent's new session was recorded and
// relisted a stream, and committing then would put older objects over
// newer ones. The read is a locking one (the latest committed row, not the
// transaction's snapshot) and its shared lock, held only until the commit
// that follows, makes a new session wait for that commit.
func recheckFence(ctx context.Context, tx *sql.Tx, d dialect, f Fence) error {
	if d.forShare == "" {
		return nil // one writer: nothing ran meanwhile
	}
	return readFence(ctx, tx, d, f, d.forShare)
}

func readFence(ctx context.Context, tx *sql.Tx, d dialect, f Fence, lock string) error {
	var live string
	err := tx.QueryRowContext(ctx, d.rebind(`SELECT session_id FROM `+agentSessionsTable+` WHERE agent_id = ?`+lock), f.AgentID).Scan(&live)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("check the session: %w", err)
	}
	if live != f.SessionID {
		return fmt.Errorf("agent %s, session %s: %w", f.AgentID, f.SessionID, ErrFenced)
	}
	return nil
}
