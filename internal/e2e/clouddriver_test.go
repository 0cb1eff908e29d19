package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/cdaccounts"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// Clouddriver's accounts, scanned and intercepted, become ACTIVE on a
// real agent through the Dynamic Accounts lifecycle; an agent with
// dynamicAccountsEnabled: false never gets one.
func TestClouddriverAccounts(t *testing.T) {
	t.Parallel()
	clouddriverAccounts(t, cdaccounts.DriverSQLite, filepath.Join(t.TempDir(), "cp.db"))
}

func TestClouddriverAccountsMySQL(t *testing.T) {
	t.Parallel()
	driver, dsn := backendDB(t, storetest.MySQL())
	clouddriverAccounts(t, driver, dsn)
}

func clouddriverAccounts(t *testing.T, driver, dsnOrPath string) {
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	createConfigMap(t, cs, "default", "from-clouddriver")
	kubeconfig, err := os.ReadFile(cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	mustCreateNamespace(t, cs, "spinnaker")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kubeconfigs", Namespace: "spinnaker"}, Data: map[string][]byte{"prod": kubeconfig}}
	if _, err := cs.CoreV1().Secrets("spinnaker").Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Clouddriver's tables, created and filled as Clouddriver does.
	raw := openRaw(t, driver, dsnOrPath)
	cd := clouddriverSQL{db: raw, pg: driver == cdaccounts.DriverPostgres}
	cd.liquibase(t, driver)
	ref := "encryptedFile:k8s!n:kubeconfigs!k:prod!ns:spinnaker"
	cd.create(t, "cd-1", fmt.Sprintf(`{"type":"kubernetes","name":"cd-1","kubeconfigFile":%q,"namespaces":["default"]}`, ref))
	cd.create(t, "cd-2", `{"@type":"kubernetes","name":"cd-2","kubeconfigContents":"encrypted:k8s!n:kubeconfigs!k:prod!ns:spinnaker"}`)
	cd.create(t, "cd-3", fmt.Sprintf(`{"type":"kubernetes","name":"cd-3","kubeconfigFile":%q}`, cluster.KubeconfigPath))
	cd.create(t, "other-1", fmt.Sprintf(`{"type":"kubernetes","name":"other-1","kubeconfigFile":%q}`, cluster.KubeconfigPath))

	o := cpOptions{dynamic: fastDynamic(), secrets: cluster}
	if driver == cdaccounts.DriverSQLite {
		o.dbPath = dsnOrPath
	} else {
		o.driver, o.dsn = driver, dsnOrPath
	}
	o.extend = func(srv *controlplane.Server, st store.Store, mgr *dynaccounts.Manager) {
		db, err := cdaccounts.OpenDB(driver, dsnOrPath)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := cdaccounts.New(cdaccounts.Config{NamePatterns: []string{"^cd-"}, ScanBatchSize: 2,
			ScanFrequency: 200 * time.Millisecond, Interceptor: true, ReplicaID: "cp-test", Log: testLogger(t)}, db, st, mgr)
		if err != nil {
			t.Fatal(err)
		}
		srv.Extend(svc)
	}
	cp := startControlPlane(t, o)
	startAgentNoDynamic(t, "agent-nodyn", "zone-a", cp.grpc)
	startAgentAs(t, "agent-a", "zone-a", cp.grpc)

	for _, name := range []string{"cd-1", "cd-2", "cd-3"} {
		a := waitState(t, cp, name, dynaccounts.Active)
		if a.AgentID != "agent-a" || a.KubeHost != cluster.Host {
			t.Errorf("%s served by %q (host %s), want agent-a", name, a.AgentID, a.KubeHost)
		}
	}
	if _, code := accountState(t, cp, "other-1"); code != http.StatusNotFound {
		t.Errorf("other-1 (not matching) in kubesvc_accounts: %d", code)
	}
	present(t, cp, q("account", "cd-1", "kind", "ConfigMap", "name", "from-clouddriver"), "default/from-clouddriver")

	// Clouddriver deletes a row: the account is deactivated.
	cd.delete(t, "cd-3")
	waitState(t, cp, "cd-3", dynaccounts.Inactive)

	// The interceptor: one POST creates and activates; DELETE removes.
	body := fmt.Sprintf(`{"type":"kubernetes","name":"cd-new","kubeconfigFile":%q}`, ref)
	if code, resp := send(t, "POST", cp.http+"/credentials", body); code != http.StatusOK {
		t.Fatalf("POST /credentials: %d %s", code, resp)
	}
	waitState(t, cp, "cd-new", dynaccounts.Active)
	if code, resp := send(t, "POST", cp.http+"/credentials", `{"type":"kubernetes","name":"cd-new"`); code != http.StatusBadRequest {
		t.Errorf("malformed POST: %d %s", code, resp)
	}
	if code, resp := send(t, "DELETE", cp.http+"/credentials/cd-new", ""); code != http.StatusOK {
		t.Fatalf("DELETE /credentials/cd-new: %d %s", code, resp)
	}
	eventually(t, wait, func() string {
		if _, code := accountState(t, cp, "cd-new"); code != http.StatusNotFound {
			return fmt.Sprintf("cd-new after DELETE: %d", code)
		}
		return ""
	})
	var n int
	if err := raw.QueryRow(cd.q(`SELECT COUNT(*) FROM accounts WHERE id = ?`), "cd-new").Scan(&n); err != nil || n != 0 {
		t.Errorf("cd-new still in Clouddriver's accounts: %d %v", n, err)
	}

	// With only an agent refusing dynamic accounts, none is routed to it.
	lone := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "lone.db"), dynamic: fastDynamic()})
	startAgentNoDynamic(t, "agent-nodyn-2", "zone-b", lone.grpc)
	send(t, "POST", lone.http+"/armory/accounts", fmt.Sprintf(`[{"name":"refused","kubeconfigFile":%q}]`, cluster.KubeconfigPath))
	send(t, "PATCH", lone.http+"/armory/accounts", `[{"name":"refused","state":"ACTIVE"}]`)
	a := waitState(t, lone, "refused", dynaccounts.Failed)
	if !strings.Contains(a.ErrorMessage, "no connected agent accepts dynamic accounts") {
		t.Errorf("error %q", a.ErrorMessage)
	}
}

// startAgentNoDynamic starts an agent configured with
// dynamicAccountsEnabled: false.
func startAgentNoDynamic(t *testing.T, id, zone, target string) {
	t.Helper()
	a, err := agent.New(agent.Config{
		ID: id, ZoneID: zone, Version: "test", Target: target, DisableDynamicAccounts: true,
		KeepaliveTime: 10 * time.Second, KeepaliveTimeout: 5 * time.Second,
		NewExecutor: agent.OpsExecutors(ops.Options{}),
		Backoff:     agent.Backoff{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		Log:         testLogger(t).With("component", "agent"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
}

func openRaw(t *testing.T, driver, dsnOrPath string) *sql.DB {
	t.Helper()
	db, err := cdaccounts.OpenDB(driver, dsnOrPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db.SQL()
}

// clouddriverSQL writes Clouddriver's tables with the SQL Clouddriver
// runs (clouddriver-sql's Liquibase changelog and account repository).
type clouddriverSQL struct {
	db *sql.DB
	pg bool
}

func (c clouddriverSQL) q(s string) string {
	if !c.pg {
		return s
	}
	for i := 1; strings.Contains(s, "?"); i++ {
		s = strings.Replace(s, "?", fmt.Sprintf("$%d", i), 1)
	}
	return s
}

func (c clouddriverSQL) liquibase(t *testing.T, driver string) {
	t.Helper()
	body, boolean, suffix, deflt := "TEXT", "BOOLEAN", "", "0"
	switch driver {
	case cdaccounts.DriverMySQL:
		body, boolean, suffix = "JSON", "BIT(1)", " engine innodb DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci"
	case cdaccounts.DriverPostgres:
		body, deflt = "JSONB", "FALSE"
	}
	for _, s := range []string{
		`CREATE TABLE accounts (id VARCHAR(255) NOT NULL, type VARCHAR(50) NOT NULL, body ` + body + ` NOT NULL,
			created_at BIGINT NOT NULL, last_modified_at BIGINT NOT NULL, last_modified_by VARCHAR(255) NOT NULL,
			CONSTRAINT PK_ACCOUNTS PRIMARY KEY (id))` + suffix,
		`CREATE INDEX accounts_type_index ON accounts(id, type)`,
		`CREATE INDEX accounts_timestamp_index ON accounts(id, type, created_at, last_modified_at)`,
		`CREATE TABLE accounts_history (id VARCHAR(255) NOT NULL, type VARCHAR(50), body ` + body + `,
			last_modified_at BIGINT NOT NULL, version INT NOT NULL, is_deleted ` + boolean + ` DEFAULT ` + deflt + ` NOT NULL,
			CONSTRAINT PK_ACCOUNTS_HISTORY PRIMARY KEY (id, version))` + suffix,
	} {
		if _, err := c.db.Exec(s); err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
	}
}

func (c clouddriverSQL) create(t *testing.T, id, body string) {
	t.Helper()
	now := time.Now().UnixMilli()
	c.tx(t, func(tx *sql.Tx) error {
		if _, err := tx.Exec(c.q(`INSERT INTO accounts (id, type, body, created_at, last_modified_at, last_modified_by)
			VALUES (?, 'kubernetes', ?, ?, ?, 'anonymous')`), id, body, now, now); err != nil {
			return err
		}
		_, err := tx.Exec(c.q(`INSERT INTO accounts_history (id, type, body, last_modified_at, version)
			VALUES (?, 'kubernetes', ?, ?, (SELECT COUNT(*) + 1 FROM (SELECT version FROM accounts_history WHERE id = ?) v))`), id, body, now, id)
		return err
	})
}

func (c clouddriverSQL) delete(t *testing.T, id string) {
	t.Helper()
	c.tx(t, func(tx *sql.Tx) error {
		if _, err := tx.Exec(c.q(`INSERT INTO accounts_history (id, is_deleted, last_modified_at, version)
			VALUES (?, ?, ?, (SELECT COUNT(*) + 1 FROM (SELECT version FROM accounts_history WHERE id = ?) v))`), id, true, time.Now().UnixMilli(), id); err != nil {
			return err
		}
		_, err := tx.Exec(c.q(`DELETE FROM accounts WHERE id = ?`), id)
		return err
	})
}

func (c clouddriverSQL) tx(t *testing.T, fn func(*sql.Tx) error) {
	t.Helper()
	tx, err := c.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
