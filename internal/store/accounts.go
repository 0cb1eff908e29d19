package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const accountsTable = "kubesvc_accounts"

const accountColumns = `name, state, zone_id, definition, kubeconfig_ref, kubeconfig_sealed, error_message,
	failed_count, api_host, kube_version, cert_fingerprint, dynamic, agent_id, owner,
	created_at_ms, updated_at_ms, version`

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var def string
	var created, updated int64
	err := sc.Scan(&a.Name, &a.State, &a.ZoneID, &def, &a.KubeconfigRef, &a.KubeconfigSealed, &a.ErrorMessage,
		&a.FailedCount, &a.APIHost, &a.KubeVersion, &a.CertFingerprint, &a.Dynamic, &a.AgentID, &a.Owner,
		&created, &updated, &a.Version)
	if err != nil {
		return Account{}, err
	}
	a.Definition = []byte(def)
	a.CreatedAt, a.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return a, nil
}

func validateAccount(a Account) error {
	switch {
	case a.Name == "":
		return fmt.Errorf("%w: account name is empty", ErrInvalidChange)
	case len(a.Name) > 253:
		return fmt.Errorf("%w: account name longer than 253 characters", ErrInvalidChange)
	case a.State == "":
		return fmt.Errorf("%w: account %q has no state", ErrInvalidChange, a.Name)
	}
	return nil
}

// CreateAccount inserts a new account at version 1.
func (s *sqlStore) CreateAccount(ctx context.Context, a Account) (Account, error) {
	if err := validateAccount(a); err != nil {
		return Account{}, fmt.Errorf("store: create account: %w", err)
	}
	now := s.now()
	a.CreatedAt, a.UpdatedAt, a.Version = now, now, 1
	if a.Definition == nil {
		a.Definition = []byte("{}")
	}
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM `+accountsTable+` WHERE name = ?`), a.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("account %q: %w", a.Name, ErrExists)
		}
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO `+accountsTable+` (`+accountColumns+`)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			a.Name, a.State, a.ZoneID, string(a.Definition), a.KubeconfigRef, a.KubeconfigSealed, a.ErrorMessage,
			a.FailedCount, a.APIHost, a.KubeVersion, a.CertFingerprint, a.Dynamic, a.AgentID, a.Owner,
			a.CreatedAt.UnixMilli(), a.UpdatedAt.UnixMilli(), a.Version)
		if err != nil && isUniqueViolation(err) {
			return fmt.Errorf("account %q: %w", a.Name, ErrExists)
		}
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("store: create account: %w", err)
	}
	return a, nil
}

// isUniqueViolation recognises a duplicate-key error of any dialect (a
// concurrent insert that won the race).
func isUniqueViolation(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "unique") || strings.Contains(msg, "duplicate")
}

// GetAccount returns the account called name.
func (s *sqlStore) GetAccount(ctx context.Context, name string) (Account, error) {
	row := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+accountColumns+` FROM `+accountsTable+` WHERE name = ?`), name)
	a, err := scanAccount(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("store: account %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("store: get account %q: %w", name, err)
	}
	return a, nil
}

// stateColumns are accountColumns without the definition and credentials.
const stateColumns = `name, state, zone_id, error_message, failed_count, api_host, kube_version, cert_fingerprint,
	dynamic, agent_id, owner, created_at_ms, updated_at_ms, version`

// AccountStates returns every account without its definition and
// credentials, by name.
func (s *sqlStore) AccountStates(ctx context.Context) ([]Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+stateColumns+` FROM `+accountsTable+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: account states: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		var created, updated int64
		if err := rows.Scan(&a.Name, &a.State, &a.ZoneID, &a.ErrorMessage, &a.FailedCount, &a.APIHost, &a.KubeVersion,
			&a.CertFingerprint, &a.Dynamic, &a.AgentID, &a.Owner, &created, &updated, &a.Version); err != nil {
			return nil, fmt.Errorf("store: account states: %w", err)
		}
		a.CreatedAt, a.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: account states: %w", err)
	}
	return out, nil
}

// AccountsPage returns at most limit accounts from offset, by name, and
// the number of accounts.
func (s *sqlStore) AccountsPage(ctx context.Context, offset, limit int) ([]Account, int, error) {
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+accountsTable).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: count accounts: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT `+accountColumns+` FROM `+accountsTable+` ORDER BY name LIMIT ? OFFSET ?`), limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: page of accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("store: page of accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: page of accounts: %w", err)
	}
	return out, total, nil
}

// ListAccounts returns the accounts in states (all if none), by name.
func (s *sqlStore) ListAccounts(ctx context.Context, states ...string) ([]Account, error) {
	q := `SELECT ` + accountColumns + ` FROM ` + accountsTable
	args := make([]any, 0, len(states))
	if len(states) > 0 {
		q += ` WHERE state IN (` + placeholders(len(states)) + `)`
		for _, st := range states {
			args = append(args, st)
		}
	}
	q += ` ORDER BY name`
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	return out, nil
}

// UpdateAccount writes a, conditional on a.Version.
func (s *sqlStore) UpdateAccount(ctx context.Context, a Account) (Account, error) {
	if err := validateAccount(a); err != nil {
		return Account{}, fmt.Errorf("store: update account: %w", err)
	}
	if a.Definition == nil {
		a.Definition = []byte("{}")
	}
	a.UpdatedAt = s.now()
	var res sql.Result
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE `+accountsTable+` SET state = ?, zone_id = ?, definition = ?,
	kubeconfig_ref = ?, kubeconfig_sealed = ?, error_message = ?, failed_count = ?, api_host = ?, kube_version = ?,
	cert_fingerprint = ?, dynamic = ?, agent_id = ?, owner = ?, updated_at_ms = ?, version = version + 1
	WHERE name = ? AND version = ?`),
			a.State, a.ZoneID, string(a.Definition), a.KubeconfigRef, a.KubeconfigSealed, a.ErrorMessage, a.FailedCount,
			a.APIHost, a.KubeVersion, a.CertFingerprint, a.Dynamic, a.AgentID, a.Owner, a.UpdatedAt.UnixMilli(),
			a.Name, a.Version)
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("store: update account %q: %w", a.Name, err)
	}
	if err := s.checkOneRow(ctx, res, a.Name); err != nil {
		return Account{}, err
	}
	a.Version++
	return a, nil
}

// RemoveAccount deletes the row, conditional on version.
func (s *sqlStore) RemoveAccount(ctx context.Context, name string, version int64) error {
	var res sql.Result
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+accountsTable+` WHERE name = ? AND version = ?`), name, version)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: remove account %q: %w", name, err)
	}
	return s.checkOneRow(ctx, res, name)
}

// checkOneRow turns "no row changed" into ErrConflict or ErrNotFound.
func (s *sqlStore) checkOneRow(ctx context.Context, res sql.Result, name string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: account %q: %w", name, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.GetAccount(ctx, name); errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("store: account %q: %w", name, ErrConflict)
}
