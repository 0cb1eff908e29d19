package store_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// postgresServer is the PostgreSQL server of KUBESVC_TEST_POSTGRES_DSN, a
// URL or keyword/value DSN naming a database to connect to for creating
// others, e.g.
// postgres://kubesvc:kubesvc@127.0.0.1:5432/postgres?sslmode=disable
// (scripts/test-dbs.sh). Its role needs CREATEDB.
func postgresServer() testServer {
	return testServer{
		name:   "Postgres",
		envVar: "KUBESVC_TEST_POSTGRES_DSN",
		driver: "pgx",
		open:   store.OpenPostgres,
		dsnFor: func(dsn, db string) (string, error) {
			if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
				return dsn + " dbname=" + db, nil // the last value of a keyword wins
			}
			u, err := url.Parse(dsn)
			if err != nil {
				return "", err
			}
			u.Path, u.RawPath = "/"+db, ""
			return u.String(), nil
		},
		createDB: func(db string) string { return "CREATE DATABASE " + db },
		// FORCE: a store a failed test left open does not keep it.
		dropDB: func(db string) string { return "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)" },
	}
}

func TestPostgresConformance(t *testing.T)       { runConformance(t, postgresServer()) }
func TestPostgresReopen(t *testing.T)            { runReopen(t, postgresServer()) }
func TestPostgresMigrations(t *testing.T)        { runMigrations(t, postgresServer()) }
func TestPostgresKeyLengths(t *testing.T)        { runKeyLengths(t, postgresServer()) }
func TestPostgresSameStreamWriters(t *testing.T) { runSameStreamWriters(t, postgresServer()) }
