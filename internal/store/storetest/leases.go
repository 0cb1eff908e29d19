package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

func testLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	must := func(ok bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !must(s.TryAcquireLease(ctx, "scan", "a", time.Minute)) {
		t.Fatal("a could not take a free lease")
	}
	if must(s.TryAcquireLease(ctx, "scan", "b", time.Minute)) {
		t.Error("b took a lease a holds")
	}
	if !must(s.TryAcquireLease(ctx, "scan", "a", time.Minute)) {
		t.Error("a could not acquire again the lease it holds")
	}
	if !must(s.RenewLease(ctx, "scan", "a", time.Minute)) {
		t.Error("a could not renew its lease")
	}
	if must(s.RenewLease(ctx, "scan", "b", time.Minute)) {
		t.Error("b renewed a lease it does not hold")
	}
	// Leases are independent.
	if !must(s.TryAcquireLease(ctx, "other", "b", time.Minute)) {
		t.Error("b could not take another lease")
	}
	// Releasing someone else's lease does nothing; releasing one's own frees it.
	if err := s.ReleaseLease(ctx, "scan", "b"); err != nil {
		t.Fatal(err)
	}
	if must(s.TryAcquireLease(ctx, "scan", "b", time.Minute)) {
		t.Error("b's release freed a's lease")
	}
	if err := s.ReleaseLease(ctx, "scan", "a"); err != nil {
		t.Fatal(err)
	}
	if must(s.RenewLease(ctx, "scan", "a", time.Minute)) {
		t.Error("a renewed a released lease")
	}
	if !must(s.TryAcquireLease(ctx, "scan", "b", 300*time.Millisecond)) {
		t.Fatal("b could not take a released lease")
	}
	// An expired lease is free for anyone; its old holder cannot renew it.
	time.Sleep(400 * time.Millisecond)
	if must(s.RenewLease(ctx, "scan", "b", time.Minute)) {
		t.Error("b renewed an expired lease")
	}
	if !must(s.TryAcquireLease(ctx, "scan", "a", time.Minute)) {
		t.Error("a could not take an expired lease")
	}
	if err := s.ReleaseLease(ctx, "never-taken", "a"); err != nil {
		t.Errorf("release of a lease never taken: %v", err)
	}
	for _, c := range []struct {
		name, holder string
		ttl          time.Duration
	}{{"", "a", time.Second}, {"x", "", time.Second}, {"x", "a", 0}} {
		if _, err := s.TryAcquireLease(ctx, c.name, c.holder, c.ttl); !errors.Is(err, store.ErrInvalidChange) {
			t.Errorf("TryAcquireLease(%q, %q, %s): %v, want ErrInvalidChange", c.name, c.holder, c.ttl, err)
		}
	}
}

// Many holders racing for a free lease, then for an expired one: exactly
// one wins each time.
func testLeasesRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round, ttl := range []time.Duration{300 * time.Millisecond, time.Minute} {
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 8 {
			wg.Go(func() {
				<-start
				ok, err := s.TryAcquireLease(ctx, "race", fmt.Sprintf("holder-%d-%d", round, i), ttl)
				if err != nil {
					t.Errorf("holder %d: %v", i, err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d holders won the lease, want 1", round, n)
		}
		time.Sleep(400 * time.Millisecond) // the first round's lease expires
	}
}

func testMigratedAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got, err := s.ListMigratedAccounts(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %v %v", got, err)
	}
	for _, m := range []store.MigratedAccount{{Name: "b", SourceModifiedAt: 2}, {Name: "a", SourceModifiedAt: 1}} {
		if err := s.PutMigratedAccount(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutMigratedAccount(ctx, store.MigratedAccount{Name: "b", SourceModifiedAt: 5, Deleted: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListMigratedAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a" || got[0].SourceModifiedAt != 1 || got[0].Deleted ||
		got[1].Name != "b" || got[1].SourceModifiedAt != 5 || !got[1].Deleted || got[1].UpdatedAt.IsZero() {
		t.Errorf("list: %+v", got)
	}
	if err := s.DeleteMigratedAccount(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMigratedAccount(ctx, "missing"); err != nil {
		t.Errorf("delete of a missing record: %v", err)
	}
	if got, _ := s.ListMigratedAccounts(ctx); len(got) != 1 || got[0].Name != "b" {
		t.Errorf("after delete: %+v", got)
	}
	if err := s.PutMigratedAccount(ctx, store.MigratedAccount{}); !errors.Is(err, store.ErrInvalidChange) {
		t.Errorf("put without a name: %v, want ErrInvalidChange", err)
	}
}
