package cdaccounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Clouddriver's tables (clouddriver-sql, 20210927-accounts.yml).
const (
	accountsTable = "accounts"
	historyTable  = "accounts_history"
)

// KubernetesType is the type of Kubernetes account definitions.
const KubernetesType = "kubernetes"

var (
	// errExists: the account already exists in Clouddriver's table.
	errExists = errors.New("account already exists")
	// errNotFound: the account does not exist in Clouddriver's table.
	errNotFound = errors.New("account does not exist")
)

// Row is one row of Clouddriver's accounts table.
type Row struct {
	ID             string // the account name
	Type           string // e.g. "kubernetes"
	Body           []byte // the account definition, JSON
	CreatedAt      int64  // epoch ms
	LastModifiedAt int64  // epoch ms
	LastModifiedBy string
}

// listPage bounds the rows of one query when listing a type.
const listPage = 500

// ListByType returns every row of typ, by id.
func (d *DB) ListByType(ctx context.Context, typ string) ([]Row, error) {
	var out []Row
	after := ""
	for {
		rows, err := d.page(ctx, typ, after, false, listPage)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
		if len(rows) < listPage {
			return out, nil
		}
		after = rows[len(rows)-1].ID
	}
}

// page returns up to limit rows of typ ordered by id, after (or, with
// inclusive, from) the id start.
func (d *DB) page(ctx context.Context, typ, start string, inclusive bool, limit int) ([]Row, error) {
	cmp := ">"
	if inclusive {
		cmp = ">="
	}
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT id, type, body, created_at, last_modified_at, last_modified_by
	FROM accounts WHERE type = ? AND id `+cmp+` ? ORDER BY id LIMIT ?`), typ, start, limit)
	if err != nil {
		return nil, fmt.Errorf("cdaccounts: list %s accounts: %w", typ, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var body string
		if err := rows.Scan(&r.ID, &r.Type, &body, &r.CreatedAt, &r.LastModifiedAt, &r.LastModifiedBy); err != nil {
			return nil, fmt.Errorf("cdaccounts: list %s accounts: %w", typ, err)
		}
		r.Body = []byte(body)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cdaccounts: list %s accounts: %w", typ, err)
	}
	return out, nil
}

// Get returns the row of id, or errNotFound.
func (d *DB) Get(ctx context.Context, id string) (Row, error) {
	var r Row
	var body string
	err := d.db.QueryRowContext(ctx, d.rebind(`SELECT id, type, body, created_at, last_modified_at, last_modified_by
	FROM accounts WHERE id = ?`), id).Scan(&r.ID, &r.Type, &body, &r.CreatedAt, &r.LastModifiedAt, &r.LastModifiedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, fmt.Errorf("account %q: %w", id, errNotFound)
	}
	if err != nil {
		return Row{}, fmt.Errorf("cdaccounts: read account %q: %w", id, err)
	}
	r.Body = []byte(body)
	return r, nil
}

// writeMode says what Write does when the row exists or not.
type writeMode int

const (
	createOnly writeMode = iota // POST /credentials: errExists if it exists
	updateOnly                  // PUT /credentials/{name}: errNotFound if it does not
	upsert                      // PUT /credentials (1.29+): either
)

// Write stores a definition as Clouddriver's repository does, in one
// transaction: the accounts row (created_at set on insert only; body,
// last_modified_at and last_modified_by on every write; the type of an
// existing row kept) and an accounts_history row at the next version
// (the count of the account's history rows plus one).
func (d *DB) Write(ctx context.Context, mode writeMode, id, typ string, body []byte, user string, now time.Time) error {
	ms := now.UnixMilli()
	return d.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM accounts WHERE id = ?`), id).Scan(&n); err != nil {
			return err
		}
		switch {
		case n > 0 && mode == createOnly:
			return fmt.Errorf("account %q: %w", id, errExists)
		case n == 0 && mode == updateOnly:
			return fmt.Errorf("account %q: %w", id, errNotFound)
		case n == 0:
			if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO accounts
	(id, type, body, created_at, last_modified_at, last_modified_by) VALUES (?, ?, ?, ?, ?, ?)`),
				id, typ, string(body), ms, ms, user); err != nil {
				return err
			}
		default:
			if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE accounts SET body = ?, last_modified_at = ?, last_modified_by = ?
	WHERE id = ?`), string(body), ms, user, id); err != nil {
				return err
			}
		}
		version, err := nextVersion(ctx, tx, d, id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, d.rebind(`INSERT INTO accounts_history (id, type, body, last_modified_at, version, is_deleted)
	VALUES (?, ?, ?, ?, ?, ?)`), id, typ, string(body), ms, version, false)
		return err
	})
}

// Delete removes the row of id as Clouddriver's repository does: an
// accounts_history row marked is_deleted (no type, no body) at the next
// version, and the accounts row deleted. errNotFound if there is no row.
func (d *DB) Delete(ctx context.Context, id string, now time.Time) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM accounts WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("account %q: %w", id, errNotFound)
			}
			return err
		}
		version, err := nextVersion(ctx, tx, d, id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, d.rebind(`INSERT INTO accounts_history (id, last_modified_at, version, is_deleted)
	VALUES (?, ?, ?, ?)`), id, now.UnixMilli(), version, true)
		return err
	})
}

// nextVersion is Clouddriver's next history version of id: the number of
// its history rows plus one. Two writers computing the same one collide on
// the primary key; the loser is run again (inTx).
func nextVersion(ctx context.Context, tx *sql.Tx, d *DB, id string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM accounts_history WHERE id = ?`), id).Scan(&n)
	return n + 1, err
}

// Revision is one row of accounts_history.
type Revision struct {
	Version        int
	Type           string // empty for a deletion
	Body           []byte // nil for a deletion
	LastModifiedAt int64
	Deleted        bool
}

// History returns the revisions of id, newest first.
func (d *DB) History(ctx context.Context, id string) ([]Revision, error) {
	// is_deleted is BIT(1) on MySQL (Liquibase's boolean), which does not
	// scan into a bool: CASE turns every spelling into 0 or 1.
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT version, type, body, last_modified_at,
	CASE WHEN is_deleted THEN 1 ELSE 0 END FROM accounts_history WHERE id = ? ORDER BY version DESC`), id)
	if err != nil {
		return nil, fmt.Errorf("cdaccounts: history of %q: %w", id, err)
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		var r Revision
		var typ, body sql.NullString
		var deleted int
		if err := rows.Scan(&r.Version, &typ, &body, &r.LastModifiedAt, &deleted); err != nil {
			return nil, fmt.Errorf("cdaccounts: history of %q: %w", id, err)
		}
		r.Type, r.Deleted = typ.String, deleted != 0
		if body.Valid {
			r.Body = []byte(body.String)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// inTx runs fn in a transaction, again (up to 5 times) when it loses a
// race for a history version or a first insert to a concurrent writer.
func (d *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := d.inTxOnce(ctx, fn)
		if err == nil || attempt == 5 || errors.Is(err, errExists) || errors.Is(err, errNotFound) || !retryable(err) {
			if err != nil && !errors.Is(err, errExists) && !errors.Is(err, errNotFound) {
				err = fmt.Errorf("cdaccounts: write Clouddriver accounts: %w", err)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 10 * time.Millisecond):
		}
	}
}

func (d *DB) inTxOnce(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// retryable: a duplicate key (two writers computing the same history
// version) or a deadlock / serialization failure.
func retryable(err error) bool {
	if isDuplicate(err) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"Deadlock", "deadlock", "40001", "40P01", "SQLITE_BUSY", "database is locked"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
