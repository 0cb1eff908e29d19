package cdaccounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Driver names, as the control plane's sql.driver spells them.
const (
	DriverSQLite   = "sqlite"
	DriverMySQL    = "mysql"
	DriverPostgres = "postgres"
)

// DB is the database holding Clouddriver's accounts and accounts_history
// tables: the control plane's own database or another one.
type DB struct {
	db      *sql.DB
	dialect string // DriverSQLite, DriverMySQL or DriverPostgres
}

// OpenDB opens the database of driver: for "sqlite", dsnOrPath is the
// database file; for "mysql" and "postgres" a data source name as sql.dsn
// takes it. Nothing is created or checked until it is used.
func OpenDB(driver, dsnOrPath string) (*DB, error) {
	var db *sql.DB
	var err error
	switch driver {
	case DriverSQLite:
		if dsnOrPath == "" || strings.ContainsRune(dsnOrPath, '?') {
			return nil, fmt.Errorf("cdaccounts: sqlite: unsupported database path %q", dsnOrPath)
		}
		// Writes take the lock when they begin (no failed upgrade of a
		// read snapshot) and wait for the control plane's writer.
		params := url.Values{"_pragma": {"busy_timeout(10000)"}, "_txlock": {"immediate"}}
		db, err = sql.Open("sqlite", dsnOrPath+"?"+params.Encode())
		if err == nil {
			db.SetMaxOpenConns(1)
		}
	case DriverMySQL:
		var cfg *mysql.Config
		if cfg, err = mysql.ParseDSN(dsnOrPath); err != nil {
			return nil, fmt.Errorf("cdaccounts: mysql DSN: %w", err)
		}
		if cfg.Timeout == 0 {
			cfg.Timeout = 10 * time.Second
		}
		db, err = sql.Open("mysql", cfg.FormatDSN())
	case DriverPostgres:
		db, err = sql.Open("pgx", dsnOrPath)
	default:
		return nil, fmt.Errorf("cdaccounts: unknown driver %q (want %s, %s or %s)", driver, DriverSQLite, DriverMySQL, DriverPostgres)
	}
	if err != nil {
		return nil, fmt.Errorf("cdaccounts: open %s: %w", driver, err)
	}
	if driver != DriverSQLite {
		db.SetMaxOpenConns(4)
		db.SetConnMaxLifetime(30 * time.Minute)
	}
	return &DB{db: db, dialect: driver}, nil
}

// Close closes the database handle.
func (d *DB) Close() error { return d.db.Close() }

// SQL returns the handle, for tests that write rows as Clouddriver does.
func (d *DB) SQL() *sql.DB { return d.db }

// rebind rewrites "?" placeholders as $1, $2... for PostgreSQL.
func (d *DB) rebind(q string) string {
	if d.dialect != DriverPostgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// tableExists reports whether the current database or schema has table.
func (d *DB) tableExists(ctx context.Context, table string) (bool, error) {
	var q string
	switch d.dialect {
	case DriverSQLite:
		q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	case DriverMySQL:
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`
	default:
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`
	}
	var n int
	if err := d.db.QueryRowContext(ctx, d.rebind(q), table).Scan(&n); err != nil {
		return false, fmt.Errorf("cdaccounts: look for table %s: %w", table, err)
	}
	return n > 0, nil
}

// TablesExist reports whether both accounts and accounts_history exist.
func (d *DB) TablesExist(ctx context.Context) (bool, error) {
	for _, t := range []string{accountsTable, historyTable} {
		ok, err := d.tableExists(ctx, t)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// EnsureTables creates accounts and accounts_history when they do not
// exist, with the schema of Clouddriver's Liquibase changelog
// (20210927-accounts.yml): JSON bodies (jsonb on PostgreSQL; text on
// SQLite, which Clouddriver does not support), utf8mb4_unicode_ci InnoDB
// tables on MySQL, and the two indexes of accounts. Existing tables are
// left as they are. Clouddriver's own Liquibase does not know about tables
// created here: point Clouddriver at the database first if it is to run
// its migrations there.
func (d *DB) EnsureTables(ctx context.Context) (created bool, err error) {
	if ok, err := d.TablesExist(ctx); err != nil || ok {
		return false, err
	}
	body, suffix, boolean, boolFalse := "json", "", "boolean", "false"
	switch d.dialect {
	case DriverSQLite:
		body, boolFalse = "text", "0"
	case DriverMySQL:
		// Liquibase spells boolean BIT(1) on MySQL.
		suffix, boolean, boolFalse = " engine innodb DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci", "BIT(1)", "0"
	case DriverPostgres:
		body = "jsonb"
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS accounts (
	id varchar(255) NOT NULL,
	type varchar(50) NOT NULL,
	body ` + body + ` NOT NULL,
	created_at bigint NOT NULL,
	last_modified_at bigint NOT NULL,
	last_modified_by varchar(255) NOT NULL,
	PRIMARY KEY (id)
)` + suffix,
		`CREATE INDEX accounts_type_index ON accounts (id, type)`,
		`CREATE INDEX accounts_timestamp_index ON accounts (id, type, created_at, last_modified_at)`,
		`CREATE TABLE IF NOT EXISTS accounts_history (
	id varchar(255) NOT NULL,
	type varchar(50),
	body ` + body + `,
	last_modified_at bigint NOT NULL,
	version int NOT NULL,
	is_deleted ` + boolean + ` NOT NULL DEFAULT ` + boolFalse + `,
	PRIMARY KEY (id, version)
)` + suffix,
	}
	for _, s := range stmts {
		if _, err := d.db.ExecContext(ctx, s); err != nil {
			if strings.HasPrefix(s, "CREATE INDEX") && alreadyExists(err) {
				continue // another replica created the table at the same time
			}
			return false, fmt.Errorf("cdaccounts: create Clouddriver tables: %w", err)
		}
	}
	return true, nil
}

// alreadyExists recognises "index exists" errors of the three databases.
func alreadyExists(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1061 { // ER_DUP_KEYNAME
		return true
	}
	return strings.Contains(strings.ToLower(err.Error()), "already exists")
}

// isDuplicate recognises a duplicate primary key of the three databases.
func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "unique") || strings.Contains(msg, "duplicate") || strings.Contains(msg, "23505")
}
