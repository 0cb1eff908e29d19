package store

import (
	"database/sql"
	"strconv"
	"strings"
)

// upsertStyle is how a dialect spells "insert, or update on key conflict".
type upsertStyle int

const (
	// onConflict: INSERT ... ON CONFLICT (key) DO UPDATE SET c = excluded.c
	// (SQLite, PostgreSQL).
	onConflict upsertStyle = iota
	// onDuplicateKey: INSERT ... ON DUPLICATE KEY UPDATE c = VALUES(c)
	// (MySQL, MariaDB).
	onDuplicateKey
)

// dialect is what differs between SQL backends. Queries are written once,
// with "?" placeholders, and passed through rebind; DDL takes its column
// types from here.
//
// Adding a backend (mysql.go, postgres.go) means: one dialect value, one
// Open function that builds a sqlStore with it, and running storetest.Run.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of "?" (PostgreSQL).
	numbered bool
	upsert   upsertStyle

	// Column types.
	//
	// key is for the columns of primary keys and indexes. Kubernetes names
	// are at most 253 characters. MySQL limits an index to 3072 bytes: with
	// utf8mb4 (4 bytes a character) a 5-column key of VARCHAR(253) does not
	// fit, so MySQL needs "VARCHAR(253) CHARACTER SET ascii" (every key
	// value is ASCII: DNS names, group names, kinds) or shorter lengths.
	key string
	// text is for short non-key strings (versions, UIDs, applications).
	text string
	// largeText is for unbounded text (labels as JSON).
	largeText string
	// blob is for the object body (JSON as bytes).
	blob    string
	bigint  string
	boolean string
	// tableSuffix ends every CREATE TABLE (e.g. MySQL's ENGINE/charset).
	tableSuffix string

	// forUpdate ends a SELECT of a row the transaction will write, to lock
	// it (" FOR UPDATE"): on a server several transactions run at once.
	// Empty for SQLite, whose writes are serialised by its one writer.
	forUpdate string
	// forShare ends a SELECT that must read the latest committed row and
	// keep it from changing until the transaction ends (a shared lock);
	// empty for SQLite.
	forShare string
	// groupCommit makes concurrent ApplyChanges calls share transactions
	// (group.go): where one connection writes (SQLite), a transaction per
	// agent batch queues the agents behind each other's BEGIN and COMMIT.
	// Servers run concurrent transactions and group their commits' log
	// writes themselves.
	groupCommit bool
	// readIsolation is the isolation of read transactions that must see
	// one snapshot (CachedAccounts); zero for the driver's default.
	readIsolation sql.IsolationLevel
	// appliedDDL reports whether a migration statement failed only
	// because it had already taken effect (table, column or index
	// exists). Set where DDL commits implicitly (MySQL): a migration
	// interrupted after some of its statements is re-run over them.
	appliedDDL func(err error) bool
}

// readTxOptions are the options of a read-only snapshot transaction.
func (d dialect) readTxOptions() *sql.TxOptions {
	return &sql.TxOptions{ReadOnly: true, Isolation: d.readIsolation}
}

// retryableTxError reports whether err (from a transaction's statement or
// its commit) says that the transaction lost a race with a concurrent one
// and was rolled back, so running it again can succeed: deadlocks,
// serialization failures, and unique-key violations (a row another
// transaction inserted after this one found none, e.g. two first writes
// to the same stream). SQLite's writes are serialised, it has none.
func retryableTxError(err error) bool {
	return mysqlRetryable(err) || postgresRetryable(err)
}

// sqliteDialect is SQLite (modernc.org/sqlite). Types are mostly advisory
// in SQLite; they are spelled so the DDL reads the same as elsewhere.
func sqliteDialect() dialect {
	return dialect{
		name:      "sqlite",
		upsert:    onConflict,
		key:       "VARCHAR(253) NOT NULL",
		text:      "VARCHAR(253) NOT NULL DEFAULT ''",
		largeText: "TEXT NOT NULL",
		blob:      "BLOB NOT NULL",
		bigint:    "BIGINT NOT NULL",
		boolean:   "BOOLEAN NOT NULL",

		groupCommit: true,
	}
}

// rebind rewrites the "?" placeholders of q for the dialect. Queries in this
// package never contain "?" inside string literals.
func (d dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// insertOrUpdate returns an upsert of cols into table: a conflict on key
// updates every column of cols that is not part of key.
func (d dialect) insertOrUpdate(table string, cols, key []string) string {
	isKey := make(map[string]bool, len(key))
	for _, k := range key {
		isKey[k] = true
	}
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(") VALUES (")
	b.WriteString(placeholders(len(cols)))
	b.WriteString(")")
	switch d.upsert {
	case onDuplicateKey:
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
	default:
		b.WriteString(" ON CONFLICT (")
		b.WriteString(strings.Join(key, ", "))
		b.WriteString(") DO UPDATE SET ")
	}
	first := true
	for _, c := range cols {
		if isKey[c] {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(c)
		if d.upsert == onDuplicateKey {
			b.WriteString(" = VALUES(" + c + ")")
		} else {
			b.WriteString(" = excluded." + c)
		}
	}
	return d.rebind(b.String())
}

// placeholders returns "?, ?, ..." (n of them).
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
