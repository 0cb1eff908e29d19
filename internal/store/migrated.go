package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// MigratedAccounts records which accounts of kubesvc_accounts were taken
// from Clouddriver's accounts table (by the scan or the /credentials
// interceptor), so that an account whose source row disappears is
// deactivated, and one whose source row changes is updated, while accounts
// created through the Dynamic Accounts API are left alone.
type MigratedAccounts interface {
	// ListMigratedAccounts returns every record, sorted by name.
	ListMigratedAccounts(ctx context.Context) ([]MigratedAccount, error)
	// PutMigratedAccount inserts or replaces the record of m.Name.
	PutMigratedAccount(ctx context.Context, m MigratedAccount) error
	// DeleteMigratedAccount deletes the record of name, if any.
	DeleteMigratedAccount(ctx context.Context, name string) error
}

// MigratedAccount is one row of kubesvc_migrated_accounts.
type MigratedAccount struct {
	Name string
	// SourceModifiedAt is the last_modified_at (epoch ms) of the
	// Clouddriver row the account was last taken from.
	SourceModifiedAt int64
	// Deleted: the source row was deleted and the account deactivated.
	Deleted   bool
	UpdatedAt time.Time
}

const migratedTable = "kubesvc_migrated_accounts"

// ListMigratedAccounts implements MigratedAccounts.
func (s *sqlStore) ListMigratedAccounts(ctx context.Context) ([]MigratedAccount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, source_modified_at_ms, deleted, updated_at_ms FROM `+migratedTable+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list migrated accounts: %w", err)
	}
	defer rows.Close()
	var out []MigratedAccount
	for rows.Next() {
		var m MigratedAccount
		var updated int64
		if err := rows.Scan(&m.Name, &m.SourceModifiedAt, &m.Deleted, &updated); err != nil {
			return nil, fmt.Errorf("store: list migrated accounts: %w", err)
		}
		m.UpdatedAt = time.UnixMilli(updated)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list migrated accounts: %w", err)
	}
	return out, nil
}

// PutMigratedAccount implements MigratedAccounts.
func (s *sqlStore) PutMigratedAccount(ctx context.Context, m MigratedAccount) error {
	if m.Name == "" || len(m.Name) > 253 {
		return fmt.Errorf("store: put migrated account: %w: name %q is empty or longer than 253 characters", ErrInvalidChange, m.Name)
	}
	q := s.d.insertOrUpdate(migratedTable, []string{"name", "source_modified_at_ms", "deleted", "updated_at_ms"}, []string{"name"})
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, m.Name, m.SourceModifiedAt, m.Deleted, s.now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put migrated account %q: %w", m.Name, err)
	}
	return nil
}

// DeleteMigratedAccount implements MigratedAccounts.
func (s *sqlStore) DeleteMigratedAccount(ctx context.Context, name string) error {
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+migratedTable+` WHERE name = ?`), name)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete migrated account %q: %w", name, err)
	}
	return nil
}
