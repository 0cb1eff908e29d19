package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

func testAccountsCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, err := s.CreateAccount(ctx, store.Account{Name: "prod", State: "INACTIVE", ZoneID: "z1", Definition: []byte(`{"name":"prod"}`), KubeconfigRef: "encryptedFile:k8s!n:kc!k:config"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 1 || a.CreatedAt.IsZero() {
		t.Errorf("created account: version %d created %v", a.Version, a.CreatedAt)
	}
	if _, err := s.CreateAccount(ctx, store.Account{Name: "prod", State: "INACTIVE"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	if _, err := s.CreateAccount(ctx, store.Account{Name: "", State: "INACTIVE"}); !errors.Is(err, store.ErrInvalidChange) {
		t.Errorf("create without a name: %v, want ErrInvalidChange", err)
	}
	got, err := s.GetAccount(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if got.ZoneID != "z1" || string(got.Definition) != `{"name":"prod"}` || got.KubeconfigRef != "encryptedFile:k8s!n:kc!k:config" || got.Version != 1 {
		t.Errorf("get: %+v", got)
	}
	if _, err := s.GetAccount(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get missing: %v, want ErrNotFound", err)
	}

	got.State, got.FailedCount, got.ErrorMessage, got.Dynamic = "FAILED", 2, "cluster unreachable", true
	upd, err := s.UpdateAccount(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Version != 2 {
		t.Errorf("version after update %d, want 2", upd.Version)
	}
	// A writer holding the old version loses.
	if _, err := s.UpdateAccount(ctx, got); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale update: %v, want ErrConflict", err)
	}
	reread, _ := s.GetAccount(ctx, "prod")
	if reread.State != "FAILED" || reread.FailedCount != 2 || reread.ErrorMessage != "cluster unreachable" || !reread.Dynamic || reread.Version != 2 {
		t.Errorf("after update: %+v", reread)
	}

	for _, n := range []string{"b", "c"} {
		if _, err := s.CreateAccount(ctx, store.Account{Name: n, State: "ACTIVE"}); err != nil {
			t.Fatal(err)
		}
	}
	active, err := s.ListAccounts(ctx, "ACTIVE")
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 2 || active[0].Name != "b" || active[1].Name != "c" {
		t.Errorf("ACTIVE accounts: %v", active)
	}
	all, _ := s.ListAccounts(ctx)
	if len(all) != 3 {
		t.Errorf("all accounts: %d, want 3", len(all))
	}
	if err := s.RemoveAccount(ctx, "prod", 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("remove with a stale version: %v, want ErrConflict", err)
	}
	if err := s.RemoveAccount(ctx, "prod", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveAccount(ctx, "prod", 2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second remove: %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateAccount(ctx, reread); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a removed account: %v, want ErrNotFound", err)
	}
}

// Parallel writers racing to move the same account from one state to the
// next: for every version exactly one of them wins, and no transition is
// lost or doubled.
func testAccountsParallelWriters(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CreateAccount(ctx, store.Account{Name: "race", State: "S0"}); err != nil {
		t.Fatal(err)
	}
	const writers, steps = 8, 20
	var wins atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for {
				a, err := s.GetAccount(ctx, "race")
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				fmt.Sscanf(a.State, "S%d", &n)
				if n >= steps {
					return
				}
				a.State = fmt.Sprintf("S%d", n+1)
				a.Owner = fmt.Sprint(w)
				if _, err := s.UpdateAccount(ctx, a); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, store.ErrConflict) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	final, err := s.GetAccount(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	if final.State != fmt.Sprintf("S%d", steps) || wins.Load() != steps || final.Version != steps+1 {
		t.Errorf("state %s, %d winning updates, version %d; want S%d, %d, %d", final.State, wins.Load(), final.Version, steps, steps, steps+1)
	}
}

// AccountStates gives every account as ListAccounts does, without its
// definition and credentials.
func testAccountStates(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, name := range []string{"b", "a"} {
		if _, err := s.CreateAccount(ctx, store.Account{Name: name, State: "ACTIVE", ZoneID: "z", Definition: []byte(`{"name":"` + name + `"}`),
			KubeconfigRef: "inline", KubeconfigSealed: "sealed-" + name, AgentID: "agent-1", Dynamic: true}); err != nil {
			t.Fatal(err)
		}
	}
	whole, err := s.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states, err := s.AccountStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != len(whole) || len(states) != 2 {
		t.Fatalf("%d states, %d accounts, want 2", len(states), len(whole))
	}
	for i, w := range whole {
		w.Definition, w.KubeconfigRef, w.KubeconfigSealed = nil, "", ""
		if got := states[i]; !reflect.DeepEqual(got, w) {
			t.Errorf("state %d: %+v, want %+v", i, got, w)
		}
	}

	// Pages, by name.
	for _, name := range []string{"e", "c", "d"} {
		if _, err := s.CreateAccount(ctx, store.Account{Name: name, State: "INACTIVE"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		offset, limit int
		want          string
	}{{0, 2, "a b"}, {2, 2, "c d"}, {4, 2, "e"}, {9, 2, ""}} {
		page, total, err := s.AccountsPage(ctx, c.offset, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range page {
			names = append(names, a.Name)
		}
		if got := strings.Join(names, " "); got != c.want || total != 5 {
			t.Errorf("page at %d of %d: %q of %d, want %q of 5", c.offset, c.limit, got, total, c.want)
		}
	}
	if page, _, _ := s.AccountsPage(ctx, 0, 1); len(page) != 1 || string(page[0].Definition) != `{"name":"a"}` || page[0].KubeconfigSealed != "sealed-a" {
		t.Errorf("a page holds whole rows: %+v", page)
	}
}
