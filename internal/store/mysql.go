package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlDialect is MySQL (5.7 and later) and MariaDB (10.3 and later), with
// InnoDB tables.
//
// Key columns are ASCII with a binary collation: InnoDB limits an index to
// 3072 bytes, which five utf8mb4 VARCHAR(253) columns exceed (5 x 253 x 4),
// and every key value is ASCII (DNS names, API groups, kinds, account and
// agent names). The binary collation compares and sorts bytes, like SQLite
// and Go, where MySQL's default collations would fold case. Other text is
// utf8mb4, also binary-collated.
func mysqlDialect() dialect {
	return dialect{
		name:          "mysql",
		upsert:        onDuplicateKey,
		key:           "VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL",
		text:          "VARCHAR(253) NOT NULL DEFAULT ''",
		largeText:     "LONGTEXT NOT NULL",
		blob:          "LONGBLOB NOT NULL",
		bigint:        "BIGINT NOT NULL",
		boolean:       "BOOLEAN NOT NULL",
		tableSuffix:   " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		forUpdate:     " FOR UPDATE",
		forShare:      " LOCK IN SHARE MODE",
		readIsolation: sql.LevelRepeatableRead,
		appliedDDL:    mysqlAppliedDDL,
	}
}

// MySQL server error numbers.
const (
	mysqlErrTableExists     = 1050 // ER_TABLE_EXISTS_ERROR
	mysqlErrDupFieldName    = 1060 // ER_DUP_FIELDNAME
	mysqlErrDupKeyName      = 1061 // ER_DUP_KEYNAME
	mysqlErrDupEntry        = 1062 // ER_DUP_ENTRY
	mysqlErrCantDropMissing = 1091 // ER_CANT_DROP_FIELD_OR_KEY
	mysqlErrDeadlock        = 1213 // ER_LOCK_DEADLOCK
)

func mysqlErrorNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// mysqlAppliedDDL recognises a DDL statement that failed because it had
// already been applied.
func mysqlAppliedDDL(err error) bool {
	switch mysqlErrorNumber(err) {
	case mysqlErrTableExists, mysqlErrDupFieldName, mysqlErrDupKeyName, mysqlErrCantDropMissing:
		return true
	}
	return false
}

// mysqlRetryable recognises a transaction rolled back by a deadlock, or a
// duplicate key inserted by a concurrent transaction (see retryableTxError).
func mysqlRetryable(err error) bool {
	switch mysqlErrorNumber(err) {
	case mysqlErrDeadlock, mysqlErrDupEntry:
		return true
	}
	return false
}

// mysqlIdleTransactionSeconds is MariaDB's idle_transaction_timeout for
// the store's connections (see OpenMySQL).
const mysqlIdleTransactionSeconds = "15"

// mysqlDialTimeout is the connect timeout when the DSN sets none.
const mysqlDialTimeout = 10 * time.Second

// OpenMySQL opens the MySQL or MariaDB database named by dsn, in the Go
// MySQL driver's format, e.g.
//
//	kubesvc:secret@tcp(db.example:3306)/kubesvc?tls=true
//	kubesvc:secret@unix(/run/mysqld/mysqld.sock)/kubesvc
//
// and migrates its schema. The database must exist; the user needs the
// privileges SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX on it.
//
// Unless the DSN says otherwise, sessions run with sql_mode TRADITIONAL
// (strict: a value too long for its column fails instead of being
// truncated). Affected-row counts are rows matched, not rows changed
// (clientFoundRows), as on the other backends. Reads and writes share one
// pool. On MariaDB, transactions left idle for 15 s (a client cut off the
// network) are ended by the server (idle_transaction_timeout).
func OpenMySQL(ctx context.Context, dsn string, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// "default addr for network '127.0.0.1:3306' unknown": the address
		// was given without tcp(...), and taken for the network's name.
		if strings.Contains(err.Error(), "default addr for network") {
			return nil, fmt.Errorf("store: mysql: %w: the DSN's address goes inside tcp(...) or unix(...), as in user:password@tcp(host:3306)/db", err)
		}
		return nil, fmt.Errorf("store: mysql: %w", err)
	}
	// The driver's own log lines (a connection reset, a bad packet) go to
	// the store's logger, not to stderr in the driver's format, which
	// broke JSON logs. mysql.SetLogger would set a logger for the whole
	// process (the driver's default logger is process-wide, and the last
	// store opened would win); Config.Logger is this store's connector's
	// alone, so nothing global is set, and nothing from init().
	dl := &mysqlDriverLog{log: log}
	cfg.Logger = dl
	if cfg.DBName == "" {
		return nil, errors.New("store: mysql: the DSN names no database (user:password@tcp(host:3306)/DATABASE)")
	}
	cfg.ClientFoundRows = true
	if cfg.Timeout == 0 {
		cfg.Timeout = mysqlDialTimeout
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["sql_mode"] = "'TRADITIONAL'"
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: mysql: %w", err)
	}
	db := sql.OpenDB(connector)
	configureServerPool(db)
	where := cfg.DBName + " on " + cfg.Addr
	var version string
	if err := db.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&version); err != nil {
		_ = db.Close()
		if errors.Is(err, mysql.ErrInvalidConn) {
			// The driver's error says nothing of why; what it logged does.
			cause := dl.last()
			if cause == "" {
				cause = "no reason given"
			}
			return nil, fmt.Errorf("store: mysql: connect to %s: %w: the connection closed before MySQL answered (%s); "+
				"is it a MySQL or MariaDB server at that address, which accepts this client (TLS: ?tls=true; max_connections)?", where, err, cause)
		}
		return nil, fmt.Errorf("store: mysql: connect to %s: %w", where, err)
	}
	// MariaDB can end a transaction left idle by a client cut off the
	// network, with its row locks, instead of keeping it until TCP gives
	// up (hours); MySQL has no such setting. Every transaction here is
	// short. Connections are opened again with it.
	if _, set := cfg.Params["idle_transaction_timeout"]; !set && strings.Contains(version, "MariaDB") {
		_ = db.Close()
		cfg.Params["idle_transaction_timeout"] = mysqlIdleTransactionSeconds
		if connector, err = mysql.NewConnector(cfg); err != nil {
			return nil, fmt.Errorf("store: mysql: %w", err)
		}
		db = sql.OpenDB(connector)
		configureServerPool(db)
	}
	d := mysqlDialect()
	if err := migrateLocked(ctx, db, d, log, mysqlLock); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w (database %s)", err, where)
	}
	log.Info("store: mysql opened", "database", cfg.DBName, "addr", cfg.Addr, "server", version,
		"schema", latestVersion())
	return newSQLStore(d, db, db, log), nil
}

// mysqlDriverLog carries the MySQL driver's log lines into the store's
// structured log, as warnings, and remembers the last one (the cause of an
// "invalid connection" error, which the driver only logs).
type mysqlDriverLog struct {
	log *slog.Logger

	mu      sync.Mutex
	lastMsg string
}

func (l *mysqlDriverLog) Print(v ...any) {
	msg := strings.TrimSpace(fmt.Sprintln(v...))
	l.mu.Lock()
	l.lastMsg = msg
	l.mu.Unlock()
	l.log.Warn("store: mysql driver", "detail", msg)
}

func (l *mysqlDriverLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastMsg
}

// mysqlLockName names the migration lock of the current database. Named
// locks are server-wide, and limited to 64 characters: the database name
// is hashed in.
const mysqlLockName = `CONCAT('kubesvc_migrate_', SHA1(DATABASE()))`

// mysqlLockWait is how long one GET_LOCK waits before logging and trying
// again.
const mysqlLockWait = 5

// mysqlLock takes the migration lock (GET_LOCK) on conn and returns its
// release.
func mysqlLock(ctx context.Context, conn *sql.Conn, log *slog.Logger) (func(context.Context) error, error) {
	for {
		var got sql.NullInt64
		err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+mysqlLockName+`, ?)`, mysqlLockWait).Scan(&got)
		if err != nil {
			return nil, fmt.Errorf("store: mysql: take the migration lock: %w", err)
		}
		if got.Valid && got.Int64 == 1 {
			break
		}
		if !got.Valid {
			return nil, errors.New("store: mysql: take the migration lock: GET_LOCK failed")
		}
		log.Info("store: mysql: waiting for another process migrating the schema")
	}
	return func(ctx context.Context) error {
		_, err := conn.ExecContext(ctx, `DO RELEASE_LOCK(`+mysqlLockName+`)`)
		return err
	}, nil
}
