package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/kubesvc/kubesvc/internal/store"
)

// Server describes a database server backend for the tests: each test
// creates its own databases on it (kubesvc_test_<random>), dropped when it
// ends, so tests and test runs can share one server at once.
type Server struct {
	name   string // for messages: "MySQL"
	envVar string // the server's DSN, without a database
	driver string // database/sql driver name, for raw connections
	open   func(ctx context.Context, dsn string, log *slog.Logger) (store.Store, error)
	// dsnFor returns dsn naming database db instead.
	dsnFor func(dsn, db string) (string, error)
	// createDB and dropDB are the statements creating and dropping db.
	createDB, dropDB func(db string) string
}

// ServerDBs creates and drops databases on a server for one test.
type ServerDBs struct {
	srv   Server
	dsn   string
	admin *sql.DB
}

// Connect connects to srv's server, skipping the test if its DSN is
// not set (failing on CI, which must test every backend).
func Connect(t *testing.T, srv Server) *ServerDBs {
	t.Helper()
	dsn := os.Getenv(srv.envVar)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must test every store backend (scripts/test.sh sets it from scripts/test-dbs.sh)", srv.envVar)
		}
		t.Skipf("%s is not set: to test the %s backend, start the servers with eval \"$(scripts/test-dbs.sh)\" (root; installs them if needed)",
			srv.envVar, srv.name)
	}
	admin, err := sql.Open(srv.driver, dsn)
	if err != nil {
		t.Fatalf("%s: %s: %v", srv.name, srv.envVar, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("%s: connect with %s: %v (is the server running? scripts/test-dbs.sh starts it)", srv.name, srv.envVar, err)
	}
	return &ServerDBs{srv: srv, dsn: dsn, admin: admin}
}

// Create makes an empty database, dropped when owner's test ends, and
// returns its DSN.
func (s *ServerDBs) Create(t, owner testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("kubesvc_test_%016x", rand.Uint64())
	if _, err := s.admin.Exec(s.srv.createDB(name)); err != nil {
		t.Fatalf("%s: create database %s: %v", s.srv.name, name, err)
	}
	owner.Cleanup(func() {
		if _, err := s.admin.Exec(s.srv.dropDB(name)); err != nil {
			owner.Errorf("%s: drop database %s: %v", s.srv.name, name, err)
		}
	})
	dsn, err := s.srv.dsnFor(s.dsn, name)
	if err != nil {
		t.Fatalf("%s: %s: %v", s.srv.name, s.srv.envVar, err)
	}
	return dsn
}

// Open opens the store of dsn.
func (s *ServerDBs) Open(t testing.TB, dsn string) store.Store {
	t.Helper()
	st, err := s.srv.open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open%s: %v", s.srv.name, err)
	}
	return st
}

// Raw opens the database of dsn directly, bypassing the store.
func (s *ServerDBs) Raw(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(s.srv.driver, dsn)
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// MySQL is the MySQL/MariaDB server of KUBESVC_TEST_MYSQL_DSN, in the
// driver's format without a database, e.g.
// kubesvc:kubesvc@unix(/run/mysqld/mysqld.sock)/ (scripts/test-dbs.sh).
// Its user needs all privileges on the databases kubesvc_test_*.
func MySQL() Server {
	return Server{
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

// Postgres is the PostgreSQL server of KUBESVC_TEST_POSTGRES_DSN, a
// URL or keyword/value DSN naming a database to connect to for creating
// others, e.g.
// postgres://kubesvc:kubesvc@127.0.0.1:5432/postgres?sslmode=disable
// (scripts/test-dbs.sh). Its role needs CREATEDB.
func Postgres() Server {
	return Server{
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

// Name names the backend in messages ("MySQL", "Postgres").
func (s Server) Name() string { return s.name }

// StoreDriver is the driver name store.Open takes for the backend.
func (s Server) StoreDriver() string {
	if s.driver == "pgx" {
		return "postgres"
	}
	return s.driver
}

// OpenStore opens the store of dsn with the backend's Open function.
func (s Server) OpenStore(ctx context.Context, dsn string, log *slog.Logger) (store.Store, error) {
	return s.open(ctx, dsn, log)
}
