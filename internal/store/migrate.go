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
// newer kubesvc than this one, by a migration that older binaries must not
// run against (see migration.compatibleFrom).
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// migrationsTable records the applied migrations, one row per version.
const migrationsTable = "kubesvc_schema_migrations"

// migration is one numbered schema change. Versions start at 1 and are
// contiguous; a released migration is never edited, only followed by a new
// one. up returns the statements for a dialect.
//
// compatibleFrom is the oldest schema version whose binaries can still run
// against the schema this migration leaves. A migration that only adds
// tables, indexes, or columns that are nullable or have a default (which
// older binaries neither read nor need to write) sets it to the version
// before its own, or older when the binaries before that are as unaffected.
// 0, or the migration's own version, means "not compatible with older
// binaries": anything older binaries would misread or miswrite (a column
// dropped, renamed, or given a new meaning; a new NOT NULL column without
// a default). It is recorded with the migration (from migration 8 on, see
// recordsCompatibility), and a binary finding the database at a newer
// version runs against it only if every migration it does not know allows
// it (checkNewerSchema).
type migration struct {
	version        int64
	name           string
	compatibleFrom int64
	up             func(d dialect) []string
}

// recordedCompatibleFrom is the value recorded for m: NULL when it is not
// compatible with older binaries.
func (m migration) recordedCompatibleFrom() sql.NullInt64 {
	if m.compatibleFrom <= 0 || m.compatibleFrom >= m.version {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: m.compatibleFrom, Valid: true}
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
		// Binaries of version 7 predate the compatibility check: they
		// refuse any newer schema, whatever compatibleFrom says.
		{version: 8, name: "migration compatibility (name, compatible_from)", compatibleFrom: 7, up: migrateCompatibility},
		{version: 9, name: "agent session version", compatibleFrom: 7, up: migrateAgentSessionVersion},
		// Only adds a nullable column that older binaries neither read nor
		// write: as harmless to 8 (the first that checks) as to 9.
		{version: 10, name: "replica timeout", compatibleFrom: 7, up: migrateReplicaTimeout},
	}
}

// recordsCompatibility is the first migration recorded with its name and
// compatibleFrom: migration 8 adds those columns. Both stay for ever, and
// keep their meaning: every binary from version 8 on reads them.
const recordsCompatibility = 8

// migrateCompatibility adds to the migrations table what a binary finding
// the database at a newer version needs to decide whether it may run: the
// name of each migration and its compatibleFrom (NULL: not compatible with
// older binaries, as for every migration recorded before this one).
func migrateCompatibility(d dialect) []string {
	return []string{
		`ALTER TABLE ` + migrationsTable + ` ADD COLUMN name ` + d.text,
		// Nullable on every dialect: NULL is "not compatible".
		`ALTER TABLE ` + migrationsTable + ` ADD COLUMN compatible_from BIGINT`,
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
//
// A database at a newer version than this binary's is left as it is: it
// is opened if every migration this binary does not know is compatible
// with it (checkNewerSchema), and refused with ErrSchemaTooNew otherwise.
func migrate(ctx context.Context, db *sql.DB, d dialect, log *slog.Logger) error {
	return migrateWith(ctx, db, d, log, migrations())
}

// migrateWith is migrate for a binary whose migrations are all: tests play
// binaries older or newer than this one with other lists.
func migrateWith(ctx context.Context, db *sql.DB, d dialect, log *slog.Logger, all []migration) error {
	create := `CREATE TABLE IF NOT EXISTS ` + migrationsTable + ` (
	version ` + d.bigint + ` PRIMARY KEY,
	applied_at ` + d.text + `
)` + d.tableSuffix
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("store: create %s: %w", migrationsTable, err)
	}
	latest := all[len(all)-1].version
	for {
		applied, newer, err := migrateOne(ctx, db, d, all, latest)
		if err != nil {
			return err
		}
		if newer > 0 {
			log.Info("store: database schema is newer than this binary, and compatible with it; not migrating",
				"dialect", d.name, "version", newer, "binaryVersion", latest)
			return nil
		}
		if applied == nil {
			return nil
		}
		log.Info("store: schema migrated", "dialect", d.name,
			"version", applied.version, "migration", applied.name)
	}
}

// migrateOne applies the first pending migration, if any, and returns it.
// When the database is at a newer version than latest and compatible with
// this binary, it applies nothing and returns that version as newer.
func migrateOne(ctx context.Context, db *sql.DB, d dialect, all []migration, latest int64) (_ *migration, newer int64, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("store: migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return nil, 0, err
	}
	interrupted, err := interruptedMigration(ctx, tx, d)
	if err != nil {
		return nil, 0, err
	}
	if interrupted.version > latest && !interrupted.compatibleWith(latest) {
		return nil, 0, fmt.Errorf("store: migration %d (%q) was interrupted, and this binary knows migrations up to %d only: "+
			"run the kubesvc release that started it, to finish it: %w", interrupted.version, interrupted.name, latest, ErrSchemaTooNew)
	}
	if current > latest {
		if err := checkNewerSchema(ctx, tx, d, current, latest); err != nil {
			return nil, 0, err
		}
		return nil, current, tx.Commit()
	}
	if current == latest {
		return nil, 0, tx.Commit()
	}
	m := all[current] // versions are contiguous from 1
	if m.version != current+1 {
		return nil, 0, fmt.Errorf("store: migration list broken: found version %d where %d was expected", m.version, current+1)
	}
	// Where DDL commits implicitly (MySQL), a row marks the migration as
	// started, committed with its first statement: a crash halfway leaves
	// it, and older binaries then refuse the schema (its compatible_from is
	// NULL) instead of running against half of it. The rows before 8 have
	// no columns for it.
	marked := interrupted.version == m.version
	markedNow := false
	if d.appliedDDL != nil && m.version > recordsCompatibility && !marked {
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO `+migrationsTable+` (version, applied_at, name, compatible_from) VALUES (?, '', ?, ?)`),
			m.version, m.name, m.recordedCompatibleFrom()); err != nil {
			return nil, 0, fmt.Errorf("store: mark migration %d as started: %w", m.version, err)
		}
		marked, markedNow = true, true
	}
	for i, stmt := range m.up(d) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			if d.appliedDDL != nil && d.appliedDDL(err) {
				continue // done by an earlier, interrupted run (DDL commits implicitly)
			}
			if markedNow && i == 0 {
				// Nothing of it took effect (a missing privilege, a lock
				// timeout): no half-done schema to warn older binaries of.
				// (On MySQL the failed DDL's implicit commit left the session
				// in autocommit: this commits, whatever the rollback below.)
				_, _ = tx.ExecContext(ctx, d.rebind(`DELETE FROM `+migrationsTable+` WHERE version = ? AND applied_at = ''`), m.version)
			}
			return nil, 0, fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
		}
	}
	ins := `INSERT INTO ` + migrationsTable + ` (version, applied_at) VALUES (?, ?)`
	args := []any{m.version, time.Now().UTC().Format(time.RFC3339Nano)}
	switch {
	case marked:
		ins = `UPDATE ` + migrationsTable + ` SET applied_at = ?, name = ?, compatible_from = ? WHERE version = ?`
		args = []any{args[1], m.name, m.recordedCompatibleFrom(), m.version}
	case m.version >= recordsCompatibility:
		ins = `INSERT INTO ` + migrationsTable + ` (version, applied_at, name, compatible_from) VALUES (?, ?, ?, ?)`
		args = append(args, m.name, m.recordedCompatibleFrom())
	}
	if _, err := tx.ExecContext(ctx, d.rebind(ins), args...); err != nil {
		return nil, 0, fmt.Errorf("store: record migration %d: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, fmt.Errorf("store: commit migration %d: %w", m.version, err)
	}
	return &m, 0, nil
}

// checkNewerSchema decides whether a binary of schema version latest may
// run against a database at version current, newer: only if every applied
// migration newer than latest recorded a compatibleFrom of latest or
// older. Otherwise it fails with ErrSchemaTooNew, naming the first
// migration that does not allow it. It never writes.
func checkNewerSchema(ctx context.Context, tx *sql.Tx, d dialect, current, latest int64) error {
	rows, err := tx.QueryContext(ctx, d.rebind(`SELECT version, name, compatible_from FROM `+migrationsTable+
		` WHERE version > ? ORDER BY version`), latest)
	if err != nil {
		return fmt.Errorf("store: read the migrations newer than this binary: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var version int64
		var name sql.NullString
		var from sql.NullInt64
		if err := rows.Scan(&version, &name, &from); err != nil {
			return fmt.Errorf("store: read the migrations newer than this binary: %w", err)
		}
		if from.Valid && from.Int64 > 0 && from.Int64 <= latest {
			continue
		}
		label := "unnamed"
		if name.String != "" {
			label = fmt.Sprintf("%q", name.String)
		}
		return fmt.Errorf("store: the database schema is at version %d, this binary knows up to %d, "+
			"and migration %d (%s) is not compatible with older binaries: run the kubesvc release that "+
			"migrated the database, or a later one (going back past migration %d needs the database "+
			"restored from a backup taken before it): %w", current, latest, version, label, version, ErrSchemaTooNew)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read the migrations newer than this binary: %w", err)
	}
	return nil
}

// checkRunning is CheckSchema for a binary of schema version latest: it
// fails with ErrSchemaTooNew when a newer binary has since applied, or
// started where DDL commits implicitly, a migration that latest's binaries
// must not run against. It never writes.
func checkRunning(ctx context.Context, db *sql.DB, d dialect, latest int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: check the schema: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	interrupted, err := interruptedMigration(ctx, tx, d)
	if err != nil {
		return err
	}
	if interrupted.version > latest && !interrupted.compatibleWith(latest) {
		return fmt.Errorf("store: a newer kubesvc started migration %d (%q), which binaries knowing migrations up to %d "+
			"must not run against: %w", interrupted.version, interrupted.name, latest, ErrSchemaTooNew)
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current > latest {
		return checkNewerSchema(ctx, tx, d, current, latest)
	}
	return nil
}

// schemaVersion returns the highest applied migration, 0 for none: one
// marked as started only (an empty applied_at) is not applied.
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int64, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM `+migrationsTable+` WHERE applied_at <> ''`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v.Int64, nil
}

// startedMigration is a migration marked as started and not finished.
type startedMigration struct {
	version        int64
	name           string
	compatibleFrom sql.NullInt64
}

// compatibleWith tells whether binaries of schema version v may run
// against the migration, done or half-done: it only adds what they ignore.
func (m startedMigration) compatibleWith(v int64) bool {
	return m.compatibleFrom.Valid && m.compatibleFrom.Int64 > 0 && m.compatibleFrom.Int64 <= v
}

// interruptedMigration returns the migration marked as started but not
// finished, if any (version 0 if none): one a crash interrupted where DDL
// commits implicitly. Before migration 8 the table has no name column, and
// no migration is ever marked.
func interruptedMigration(ctx context.Context, tx *sql.Tx, d dialect) (startedMigration, error) {
	var cols int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+migrationsTable+` WHERE version >= `+fmt.Sprint(recordsCompatibility)).Scan(&cols); err != nil {
		return startedMigration{}, fmt.Errorf("store: read the migrations: %w", err)
	}
	if cols == 0 {
		return startedMigration{}, nil
	}
	var m startedMigration
	var name sql.NullString
	err := tx.QueryRowContext(ctx, d.rebind(`SELECT version, name, compatible_from FROM `+migrationsTable+` WHERE applied_at = '' ORDER BY version DESC`)).Scan(&m.version, &name, &m.compatibleFrom)
	if errors.Is(err, sql.ErrNoRows) {
		return startedMigration{}, nil
	}
	if err != nil {
		return startedMigration{}, fmt.Errorf("store: read the migrations: %w", err)
	}
	m.name = name.String
	return m, nil
}

// SchemaVersion is the schema version this binary migrates databases to.
func SchemaVersion() int64 { return latestVersion() }
