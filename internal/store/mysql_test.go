package store_test

import (
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/kubesvc/kubesvc/internal/store"
)

// mysqlServer is the MySQL/MariaDB server of KUBESVC_TEST_MYSQL_DSN, in the
// driver's format without a database, e.g.
// kubesvc:kubesvc@unix(/run/mysqld/mysqld.sock)/ (scripts/test-dbs.sh).
// Its user needs all privileges on the databases kubesvc_test_*.
func mysqlServer() testServer {
	return testServer{
		name:   "MySQL",
		envVar: "KUBESVC_TEST_MYSQL_DSN",
		driver: "mysql",
		open:   store.OpenMySQL,
		dsnFor: func(dsn, db string) (string, error) {
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				return "", err
			}
			cfg.DBName = db
			return cfg.FormatDSN(), nil
		},
		createDB: func(db string) string { return "CREATE DATABASE " + db },
		dropDB:   func(db string) string { return "DROP DATABASE IF EXISTS " + db },
	}
}

func TestMySQLConformance(t *testing.T)           { runConformance(t, mysqlServer()) }
func TestMySQLReopen(t *testing.T)                { runReopen(t, mysqlServer()) }
func TestMySQLMigrations(t *testing.T)            { runMigrations(t, mysqlServer()) }
func TestMySQLInterruptedMigrations(t *testing.T) { runInterruptedMigrations(t, mysqlServer()) }
func TestMySQLKeyLengths(t *testing.T)            { runKeyLengths(t, mysqlServer()) }
func TestMySQLSameStreamWriters(t *testing.T)     { runSameStreamWriters(t, mysqlServer()) }
