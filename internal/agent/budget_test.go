package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or 30 s pass. It waits for a state the
// code under test must reach (some of it an API server's: discovery, its
// authorizer's caches), never asserts by sleeping; the deadline is no
// speed assertion, so it allows for a busy machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Many workers in several accounts compete for list slots. Whenever a
// worker holds a slot, the holders of its account never exceed perAccount
// and all holders never exceed total.
func TestBudgetBoundsPerAccountAndTotal(t *testing.T) {
	t.Parallel()
	const (
		accounts   = 3
		perAccount = 2
		total      = 4
		workers    = 30 // per account
	)
	shared := make(chan struct{}, total)
	var (
		held       [accounts]atomic.Int64
		heldTotal  atomic.Int64
		maxTotal   atomic.Int64
		violations atomic.Int64
		firstErr   sync.Once
		errMsg     string
		acquired   = make(chan struct{}, accounts*workers)
		hold       = make(chan struct{})
		wg         sync.WaitGroup
	)
	violate := func(msg string) {
		violations.Add(1)
		firstErr.Do(func() { errMsg = msg })
	}
	for i := range accounts {
		b := newBudget(shared, perAccount)
		for range workers {
			wg.Go(func() {
				if err := b.acquire(context.Background()); err != nil {
					violate("acquire: " + err.Error())
					return
				}
				n, tot := held[i].Add(1), heldTotal.Add(1)
				if n > perAccount {
					violate(fmt.Sprintf("account %d: %d holders", i, n))
				}
				if tot > total {
					violate(fmt.Sprintf("%d holders in total", tot))
				}
				for m := maxTotal.Load(); tot > m && !maxTotal.CompareAndSwap(m, tot); m = maxTotal.Load() {
				}
				acquired <- struct{}{}
				<-hold
				held[i].Add(-1)
				heldTotal.Add(-1)
				b.release()
			})
		}
	}
	// The budget saturates: total slots taken while everyone waits.
	for range total {
		select {
		case <-acquired:
		case <-time.After(10 * time.Second):
			t.Fatal("budget never saturated")
		}
	}
	if got := len(shared); got != total {
		t.Errorf("shared slots in use %d, want %d", got, total)
	}
	close(hold)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("workers did not all get a slot: a slot leaked")
	}
	if v := violations.Load(); v > 0 {
		t.Fatalf("%d violations, first: %s", v, errMsg)
	}
	if maxTotal.Load() != total {
		t.Errorf("max holders %d, want %d", maxTotal.Load(), total)
	}
	if len(shared) != 0 {
		t.Errorf("%d shared slots still taken", len(shared))
	}
}

func TestBudgetAcquireReturnsContextErrorWhenAccountFull(t *testing.T) {
	t.Parallel()
	b := newBudget(make(chan struct{}, 10), 1)
	if err := b.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.acquire(ctx) }()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("acquire on a full account after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acquire ignored the cancelled context")
	}
	if len(b.account) != 1 || len(b.total) != 1 {
		t.Errorf("slots after the failed acquire: account %d total %d, want 1 1", len(b.account), len(b.total))
	}
	// Deadline errors come back as such.
	dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer dcancel()
	if err := b.acquire(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire past the deadline: %v", err)
	}
}

// An account slot taken while the total budget is full is given back when
// the context ends, so the account does not shrink.
func TestBudgetAcquireReturnsContextErrorWhenTotalFull(t *testing.T) {
	t.Parallel()
	shared := make(chan struct{}, 1)
	a, b := newBudget(shared, 2), newBudget(shared, 2)
	if err := a.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.acquire(ctx) }()
	waitFor(t, "b to hold its account slot while waiting for the total", func() bool { return len(b.account) == 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("acquire: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acquire ignored the cancelled context")
	}
	if len(b.account) != 0 {
		t.Errorf("b's account slot leaked: %d in use", len(b.account))
	}
	a.release()
	if err := b.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(shared) != 1 || len(a.account) != 0 || len(b.account) != 1 {
		t.Errorf("slots: shared %d a %d b %d", len(shared), len(a.account), len(b.account))
	}
}
