package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Leases are named, expiring locks shared by the replicas of one database:
// at most one holder has a lease until it expires. Every change is a
// conditional update on the row's version, so two replicas acquiring at
// once cannot both win. Expiry is judged by the clock of the replica
// asking, so leases must be much longer than the replicas' clock skew.
type Leases interface {
	// TryAcquireLease takes the lease for holder for ttl if it is free,
	// expired, or already held by holder (then it is renewed). It reports
	// whether holder holds it afterwards.
	TryAcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// RenewLease extends a lease holder still holds (not expired) to ttl
	// from now; false if holder no longer holds it.
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease frees a lease held by holder; releasing a lease held by
	// another holder (or by nobody) does nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
}

const leasesTable = "kubesvc_leases"

// migrateClouddriverMigration creates the tables of the Clouddriver
// account migration (schema version 5): kubesvc_leases, generic named
// leases (the scan runs on one replica at a time), and
// kubesvc_migrated_accounts, which kubesvc_accounts rows came from
// Clouddriver's accounts table and which version of the source row they
// reflect.
func migrateClouddriverMigration(d dialect) []string {
	return []string{
		`CREATE TABLE ` + leasesTable + ` (
	name ` + d.key + `,
	holder ` + d.text + `,
	expires_at_ms ` + d.bigint + `,
	version ` + d.bigint + `,
	PRIMARY KEY (name)
)` + d.tableSuffix,
		`CREATE TABLE ` + migratedTable + ` (
	name ` + d.key + `,
	source_modified_at_ms ` + d.bigint + `,
	deleted ` + d.boolean + `,
	updated_at_ms ` + d.bigint + `,
	PRIMARY KEY (name)
)` + d.tableSuffix,
	}
}

func validateLease(name, holder string, ttl time.Duration, needTTL bool) error {
	switch {
	case name == "" || len(name) > 253:
		return fmt.Errorf("%w: lease name %q is empty or longer than 253 characters", ErrInvalidChange, name)
	case holder == "" || len(holder) > 253:
		return fmt.Errorf("%w: lease holder %q is empty or longer than 253 characters", ErrInvalidChange, holder)
	case needTTL && ttl <= 0:
		return fmt.Errorf("%w: lease ttl %s is not positive", ErrInvalidChange, ttl)
	}
	return nil
}

// TryAcquireLease implements Leases.
func (s *sqlStore) TryAcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := validateLease(name, holder, ttl, true); err != nil {
		return false, fmt.Errorf("store: acquire lease: %w", err)
	}
	var won bool
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		won = false
		now := s.now()
		var cur string
		var expires, version int64
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT holder, expires_at_ms, version FROM `+leasesTable+
			` WHERE name = ?`+s.d.forUpdate), name).Scan(&cur, &expires, &version)
		if errors.Is(err, sql.ErrNoRows) {
			_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO `+leasesTable+
				` (name, holder, expires_at_ms, version) VALUES (?, ?, ?, 1)`), name, holder, now.Add(ttl).UnixMilli())
			// Two first inserts on a server: the loser's duplicate key is
			// retried by inTx and then finds the winner's row.
			won = err == nil
			return err
		}
		if err != nil {
			return err
		}
		if cur != holder && expires > now.UnixMilli() {
			return nil
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE `+leasesTable+
			` SET holder = ?, expires_at_ms = ?, version = version + 1 WHERE name = ? AND version = ?`),
			holder, now.Add(ttl).UnixMilli(), name, version)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		won = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %q: %w", name, err)
	}
	return won, nil
}

// RenewLease implements Leases.
func (s *sqlStore) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := validateLease(name, holder, ttl, true); err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	var n int64
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE `+leasesTable+
			` SET expires_at_ms = ?, version = version + 1 WHERE name = ? AND holder = ? AND expires_at_ms > ?`),
			now.Add(ttl).UnixMilli(), name, holder, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: renew lease %q: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease implements Leases.
func (s *sqlStore) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := validateLease(name, holder, 0, false); err != nil {
		return fmt.Errorf("store: release lease: %w", err)
	}
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE `+leasesTable+
			` SET expires_at_ms = 0, version = version + 1 WHERE name = ? AND holder = ?`), name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: release lease %q: %w", name, err)
	}
	return nil
}
