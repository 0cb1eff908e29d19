package cdaccounts

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
)

func newScanService(t *testing.T, e *env, cfg Config) *Service {
	t.Helper()
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = "cp-1"
	}
	svc, err := New(cfg, e.db, e.st, e.mgr)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// setState moves an account as the reconciler would (the tests do not run
// it: the lifecycle is driven by agents in internal/e2e).
func (e *env) setState(t *testing.T, name, state string) {
	t.Helper()
	a, err := e.st.GetAccount(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	a.State = state
	if _, err := e.st.UpdateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

// Rows written as Clouddriver writes them ("type" and older "@type"
// bodies, secret references) are imported in batches; other names, other
// types, malformed rows and accounts created with the REST API are left
// alone; a changed row updates its account, a deleted row deactivates
// it, and a row that comes back reactivates it.
func TestScan(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.liquibase(t)
		now := time.Now()
		at := ms(now)
		e.cdCreate(t, "prod-a", "kubernetes", `{"type":"kubernetes","name":"prod-a","kubeconfigFile":"encryptedFile:k8s!n:kubeconfigs!k:a!ns:spinnaker","namespaces":["default"],"cacheThreads":1}`, at)
		e.cdCreate(t, "prod-b", "kubernetes", `{"@type":"kubernetes","name":"prod-b","kubeconfigContents":"encrypted:k8s!n:kubeconfigs!k:b","onlySpinnakerManaged":true}`, at)
		e.cdCreate(t, "prod-c", "kubernetes", `{"type":"kubernetes","name":"prod-c","kubeconfigFile":"/opt/kube/prod-c.yml"}`, at)
		e.cdCreate(t, "prod-manual", "kubernetes", `{"type":"kubernetes","name":"prod-manual","kubeconfigFile":"/x"}`, at)
		e.cdCreate(t, "dev-x", "kubernetes", `{"type":"kubernetes","name":"dev-x","kubeconfigFile":"/x"}`, at)
		e.cdCreate(t, "prod-aws", "aws", `{"type":"aws","name":"prod-aws","accountId":"123"}`, at)
		e.cdCreate(t, "prod-wrongname", "kubernetes", `{"type":"kubernetes","name":"other","kubeconfigFile":"/x"}`, at)
		if _, err := e.st.CreateAccount(ctx, store.Account{Name: "prod-manual", State: dynaccounts.Inactive}); err != nil {
			t.Fatal(err)
		}
		svc := newScanService(t, e, Config{NamePatterns: []string{"^nothing$", "^prod-"}, ScanBatchSize: 2})
		scan := func() {
			t.Helper()
			if err := svc.scan.scan(ctx); err != nil {
				t.Fatal(err)
			}
		}

		scan()
		if got := [3]string{e.state(t, "prod-a"), e.state(t, "prod-b"), e.state(t, "prod-c")}; got != [3]string{dynaccounts.ToMigrate, dynaccounts.ToMigrate, ""} {
			t.Fatalf("after the first scan (batch of 2): %q", got)
		}
		scan()
		if s := e.state(t, "prod-c"); s != dynaccounts.ToMigrate {
			t.Fatalf("prod-c after the second scan: %q", s)
		}
		for name, want := range map[string]string{"dev-x": "", "prod-aws": "", "prod-wrongname": "", "prod-manual": dynaccounts.Inactive} {
			if s := e.state(t, name); s != want {
				t.Errorf("%s: state %q, want %q", name, s, want)
			}
		}
		b, err := e.st.GetAccount(ctx, "prod-b")
		if err != nil {
			t.Fatal(err)
		}
		if b.KubeconfigRef != "encrypted:k8s!n:kubeconfigs!k:b" || b.KubeconfigSealed != "" || !b.Dynamic ||
			!strings.Contains(string(b.Definition), `"onlySpinnakerManaged":true`) || strings.Contains(string(b.Definition), "@type") {
			t.Errorf("prod-b imported as %+v (%s)", b, b.Definition)
		}
		if st := svc.Stats(); st.Migrated != 3 {
			t.Errorf("stats %+v, want 3 migrated", st)
		}

		// An update in Clouddriver reaches the account (pushed again when ACTIVE).
		e.setState(t, "prod-b", dynaccounts.Active)
		e.cdUpdate(t, "prod-b", "kubernetes", `{"@type":"kubernetes","name":"prod-b","kubeconfigContents":"encrypted:k8s!n:kubeconfigs!k:b","namespaces":["team-b"]}`, at+1000)
		scan()
		b, _ = e.st.GetAccount(ctx, "prod-b")
		if b.State != dynaccounts.ToMigrate || !strings.Contains(string(b.Definition), "team-b") {
			t.Errorf("prod-b after its update: %s %s", b.State, b.Definition)
		}

		// A deleted row deactivates its account, once; a row back reactivates it.
		e.setState(t, "prod-a", dynaccounts.Active)
		e.cdDelete(t, "prod-a", at+2000)
		scan()
		scan()
		if s := e.state(t, "prod-a"); s != dynaccounts.ToDeactivate {
			t.Errorf("prod-a after its row was deleted: %q, want TO_DEACTIVATE", s)
		}
		if st := svc.Stats(); st.Deactivated != 1 {
			t.Errorf("deactivated %d times, want 1", st.Deactivated)
		}
		e.setState(t, "prod-a", dynaccounts.Inactive)
		e.cdCreate(t, "prod-a", "kubernetes", `{"type":"kubernetes","name":"prod-a","kubeconfigFile":"encryptedFile:k8s!n:kubeconfigs!k:a!ns:spinnaker"}`, at+3000)
		scan()
		if s := e.state(t, "prod-a"); s != dynaccounts.ToMigrate {
			t.Errorf("prod-a after its row came back: %q, want TO_MIGRATE", s)
		}
		// An account deleted in kubesvc_accounts while its row stays is
		// migrated again, as one never migrated.
		if err := e.mgr.Delete(ctx, "prod-c"); err != nil {
			t.Fatal(err)
		}
		a, _ := e.st.GetAccount(ctx, "prod-c")
		if err := e.st.RemoveAccount(ctx, "prod-c", a.Version); err != nil {
			t.Fatal(err)
		}
		scan()
		if s := e.state(t, "prod-c"); s != dynaccounts.ToMigrate {
			t.Errorf("prod-c after its kubesvc row was deleted: %q", s)
		}
	})
}

// Credentials that cannot be used (inline content without a sealing key)
// make a FAILED account with the reason, not a retry every scan.
func TestScanUnusableCredentials(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.liquibase(t)
		e.cdCreate(t, "inline", "kubernetes", `{"type":"kubernetes","name":"inline","kubeconfigContents":"apiVersion: v1\nkind: Config\n"}`, ms(time.Now()))
		svc := newScanService(t, e, Config{NamePatterns: []string{"."}})
		if err := svc.scan.scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		a, err := e.st.GetAccount(context.Background(), "inline")
		if err != nil {
			t.Fatal(err)
		}
		if a.State != dynaccounts.Failed || !strings.Contains(a.ErrorMessage, "kubeconfigContents") || a.KubeconfigSealed != "" ||
			strings.Contains(string(a.Definition), "apiVersion") {
			t.Errorf("account %+v", a)
		}
	})
}

// Two replicas scanning the same tables: one holds the lease and scans,
// every account is migrated exactly once.
func TestScanTwoReplicas(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.liquibase(t)
		for i := range 30 {
			name := fmt.Sprintf("acct-%02d", i)
			e.cdCreate(t, name, "kubernetes", fmt.Sprintf(`{"type":"kubernetes","name":%q,"kubeconfigFile":"/k/%s"}`, name, name), ms(time.Now()))
		}
		var svcs []*Service
		for _, id := range []string{"cp-1", "cp-2"} {
			st := e.open()
			db, err := OpenDB(e.dialect, e.dsn)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := New(Config{NamePatterns: []string{"^acct-"}, ScanBatchSize: 7, ScanFrequency: 30 * time.Millisecond,
				ReplicaID: id}, db, st, newManager(t, st, id))
			if err != nil {
				t.Fatal(err)
			}
			svcs = append(svcs, svc)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, s := range svcs {
			wg.Go(func() {
				if err := s.Run(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			all, err := e.st.ListAccounts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(all) == 30 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond) // a few more rounds
		cancel()
		wg.Wait()
		a, b := svcs[0].Stats(), svcs[1].Stats()
		if a.Migrated+b.Migrated != 30 {
			t.Errorf("migrations: %d + %d, want 30 in all", a.Migrated, b.Migrated)
		}
		if (a.Scans == 0) == (b.Scans == 0) {
			t.Errorf("scans: cp-1 %d, cp-2 %d; want exactly one replica scanning", a.Scans, b.Scans)
		}
		all, _ := e.st.ListAccounts(context.Background())
		if len(all) != 30 {
			t.Errorf("%d accounts, want 30", len(all))
		}
		for _, acct := range all {
			if acct.Version != 1 || acct.State != dynaccounts.ToMigrate {
				t.Errorf("%s: version %d state %s: written more than once", acct.Name, acct.Version, acct.State)
			}
		}
	})
}
