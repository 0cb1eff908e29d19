package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

const agentAccountsTable = "kubesvc_agent_accounts"

// AgentAccounts returns the accounts last recorded for agentID, sorted.
func (s *sqlStore) AgentAccounts(ctx context.Context, agentID string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT account FROM `+agentAccountsTable+` WHERE agent_id = ? ORDER BY account`), agentID)
	if err != nil {
		return nil, fmt.Errorf("store: accounts of agent %q: %w", agentID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("store: accounts of agent %q: %w", agentID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: accounts of agent %q: %w", agentID, err)
	}
	return out, nil
}

// SetAgentAccounts replaces the accounts recorded for agentID.
func (s *sqlStore) SetAgentAccounts(ctx context.Context, agentID string, accounts []string) error {
	if agentID == "" {
		return fmt.Errorf("store: set agent accounts: empty agent id: %w", ErrInvalidChange)
	}
	accounts = slices.Compact(slices.Sorted(slices.Values(accounts)))
	now := s.now().UnixMilli()
	return inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+agentAccountsTable+` WHERE agent_id = ?`), agentID); err != nil {
			return fmt.Errorf("store: set accounts of agent %q: %w", agentID, err)
		}
		ins := s.d.rebind(`INSERT INTO ` + agentAccountsTable + ` (agent_id, account, updated_at_ms) VALUES (?, ?, ?)`)
		for _, a := range accounts {
			if _, err := tx.ExecContext(ctx, ins, agentID, a, now); err != nil {
				return fmt.Errorf("store: set accounts of agent %q: %w", agentID, err)
			}
		}
		return nil
	})
}

// AllAgentAccounts returns the accounts recorded for every agent.
func (s *sqlStore) AllAgentAccounts(ctx context.Context) (map[string][]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT agent_id, account FROM `+agentAccountsTable+` ORDER BY agent_id, account`)
	if err != nil {
		return nil, fmt.Errorf("store: accounts of every agent: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var agent, account string
		if err := rows.Scan(&agent, &account); err != nil {
			return nil, fmt.Errorf("store: accounts of every agent: %w", err)
		}
		out[agent] = append(out[agent], account)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: accounts of every agent: %w", err)
	}
	return out, nil
}

// AgentsServing returns the agents recorded as serving account, sorted.
func (s *sqlStore) AgentsServing(ctx context.Context, account string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT agent_id FROM `+agentAccountsTable+` WHERE account = ? ORDER BY agent_id`), account)
	if err != nil {
		return nil, fmt.Errorf("store: agents serving %q: %w", account, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("store: agents serving %q: %w", account, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: agents serving %q: %w", account, err)
	}
	return out, nil
}
