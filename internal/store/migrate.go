package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrSchemaTooNew is returned (wrapped) when the database was migrated by a
// newer kubesvc than this one: its schema version is unknown here.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// migrationsTable records the applied migrations, one row per version.
const migrationsTable = "kubesvc_schema_migrations"

// migration is one numbered schema change. Versions start at 1 and are
// contiguous; a released migration is never edited, only followed by a new
// one. up returns the statements for a dialect.
type migration struct {
	version int64
	name    string
	up      func(d dialect) []string
}

// migrations returns every migration known to this binary, in order.
func migrations() []migration {
	return []migration{
		{version: 1, name: "cache streams and objects", up: migrateCache},
		{version: 2, name: "accounts served by each agent, stream selectors", up: migrateAgentAccounts},
		{version: 3, name: "dynamic accounts (kubesvc_accounts)", up: migrateAccounts},
		{version: 4, name: "operation history (kubesvc_ops_history)", up: migrateOpsHistory},
		{version: 5, name: "Clouddriver account migration: leases, migrated accounts", up: migrateClouddriverMigration},
		{version: 6, name: "cluster: replicas, agent sessions, assignments", up: migrateCluster},
		{version: 7, name: "operation history by state", up: migrateOpsByState},
	}
}

// latestVersion is the schema version this binary writes.
func latestVersion() int64 {
	m := migrations()
	return m[len(m)-1].version
}

// migrateCache creates the cache tables: the position and generation of
// every stream, and the objects. kind_lower (the kind in lower case) serves
// the case-insensitive kind lookups without a function on an indexed column.
func migrateCache(d dialect) []string {
	return []string{
		`CREATE TABLE kubesvc_cache_streams (
	account ` + d.key + `,
	api_group ` + d.key + `,
	api_version ` + d.text + `,
	resource ` + d.key + `,
	kind ` + d.text + `,
	namespaced ` + d.boolean + `,
	namespace ` + d.key + `,
	generation ` + d.bigint + `,
	resource_version ` + d.text + `,
	syncing ` + d.boolean + `,
	updated_at_ms ` + d.bigint + `,
	PRIMARY KEY (account, api_group, resource, namespace)
)` + d.tableSuffix,
		`CREATE TABLE kubesvc_cache_objects (
	account ` + d.key + `,
	api_group ` + d.key + `,
	kind ` + d.key + `,
	namespace ` + d.key + `,
	name ` + d.key + `,
	kind_lower ` + d.key + `,
	api_version ` + d.text + `,
	resource ` + d.text + `,
	uid ` + d.text + `,
	resource_version ` + d.text + `,
	application ` + d.text + `,
	labels ` + d.largeText + `,
	generation ` + d.bigint + `,
	body ` + d.blob + `,
	updated_at_ms ` + d.bigint + `,
	PRIMARY KEY (account, api_group, kind, namespace, name)
)` + d.tableSuffix,
		`CREATE INDEX kubesvc_cache_objects_application
	ON kubesvc_cache_objects (account, application)`,
		`CREATE INDEX kubesvc_cache_objects_kind
	ON kubesvc_cache_objects (account, kind_lower, namespace, name)`,
	}
}

// migrateAgentAccounts records which accounts each agent served, and the
// selector each stream was listed with.
func migrateAgentAccounts(d dialect) []string {
	return []string{
		`CREATE TABLE kubesvc_agent_accounts (
	agent_id ` + d.key + `,
	account ` + d.key + `,
	updated_at_ms ` + d.bigint + `,
	PRIMARY KEY (agent_id, account)
)` + d.tableSuffix,
		`ALTER TABLE kubesvc_cache_streams ADD COLUMN selector_hash ` + d.text,
	}
}

// migrateAccounts creates kubesvc_accounts, the dynamic-account lifecycle.
// version is an optimistic-concurrency counter: every update is conditional
// on it, so replicas racing on a row cannot interleave their writes.
func migrateAccounts(d dialect) []string {
	return []string{
		`CREATE TABLE kubesvc_accounts (
	name ` + d.key + `,
	state ` + d.text + `,
	zone_id ` + d.text + `,
	definition ` + d.largeText + `,
	kubeconfig_ref ` + d.largeText + `,
	kubeconfig_sealed ` + d.largeText + `,
	error_message ` + d.largeText + `,
	failed_count ` + d.bigint + `,
	api_host ` + d.text + `,
	kube_version ` + d.text + `,
	cert_fingerprint ` + d.text + `,
	dynamic ` + d.boolean + `,
	agent_id ` + d.text + `,
	owner ` + d.text + `,
	created_at_ms ` + d.bigint + `,
	updated_at_ms ` + d.bigint + `,
	version ` + d.bigint + `,
	PRIMARY KEY (name)
)` + d.tableSuffix,
		`CREATE INDEX kubesvc_accounts_state ON kubesvc_accounts (state)`,
	}
}

// migrateOpsHistory creates kubesvc_ops_history: every operation routed to
// an agent, with the time of each hop and the outcome.
func migrateOpsHistory(d dialect) []string {
	return []string{
		`CREATE TABLE kubesvc_ops_history (
	id ` + d.key + `,
	account ` + d.text + `,
	op_type ` + d.text + `,
	agent_id ` + d.text + `,
	controlplane_id ` + d.text + `,
	state ` + d.text + `,
	error_message ` + d.largeText + `,
	request ` + d.largeText + `,
	result ` + d.largeText + `,
	received_at_ms ` + d.bigint + `,
	sent_at_ms ` + d.bigint + `,
	finished_at_ms ` + d.bigint + `,
	PRIMARY KEY (id)
)` + d.tableSuffix,
		`CREATE INDEX kubesvc_ops_history_received ON kubesvc_ops_history (received_at_ms)`,
	}
}

// migrate brings the schema of db to latestVersion, one transaction per
// migration. It is idempotent, and safe against another process migrating
// the same database: the version is read again inside each write
// transaction, and the server backends hold a database lock around it
// (migrateLocked). On MySQL DDL commits implicitly, so a migration
// interrupted halfway is re-run over what it did: its statements that fail
// because they already took effect (dialect.appliedDDL) are skipped.
func migrate(ctx context.Context, db *sql.DB, d dialect, log *slog.Logger) error {
	create := `CREATE TABLE IF NOT EXISTS ` + migrationsTable + ` (
	version ` + d.bigint + ` PRIMARY KEY,
	applied_at ` + d.text + `
)` + d.tableSuffix
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("store: create %s: %w", migrationsTable, err)
	}
	all := migrations()
	latest := latestVersion()
	for {
		applied, err := migrateOne(ctx, db, d, all, latest)
		if err != nil {
			return err
		}
		if applied == nil {
			return nil
		}
		log.Info("store: schema migrated", "dialect", d.name,
			"version", applied.version, "migration", applied.name)
	}
}

// migrateOne applies the first pending migration, if any, and returns it.
func migrateOne(ctx context.Context, db *sql.DB, d dialect, all []migration, latest int64) (_ *migration, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return nil, err
	}
	if current > latest {
		return nil, fmt.Errorf("store: database schema version %d, this binary knows up to %d (upgrade kubesvc): %w",
			current, latest, ErrSchemaTooNew)
	}
	if current == latest {
		return nil, tx.Commit()
	}
	m := all[current] // versions are contiguous from 1
	if m.version != current+1 {
		return nil, fmt.Errorf("store: migration list broken: found version %d where %d was expected", m.version, current+1)
	}
	for _, stmt := range m.up(d) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			if d.appliedDDL != nil && d.appliedDDL(err) {
				continue // done by an earlier, interrupted run (DDL commits implicitly)
			}
			return nil, fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
		}
	}
	ins := d.rebind(`INSERT INTO ` + migrationsTable + ` (version, applied_at) VALUES (?, ?)`)
	if _, err := tx.ExecContext(ctx, ins, m.version, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return nil, fmt.Errorf("store: record migration %d: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: commit migration %d: %w", m.version, err)
	}
	return &m, nil
}

// schemaVersion returns the highest applied migration, 0 for none.
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int64, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM `+migrationsTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v.Int64, nil
}

// SchemaVersion is the schema version this binary migrates databases to.
func SchemaVersion() int64 { return latestVersion() }
