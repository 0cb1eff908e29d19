package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

// testConcurrentWriters runs several agents' streams at once, one account
// each, and checks that no write is lost.
func testConcurrentWriters(t *testing.T, s store.Store) {
	const (
		writers = 4
		batches = 15
		perB    = 20
	)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			account := fmt.Sprintf("acct-%d", w)
			st := stream(account, configMaps(), "")
			rv := 0
			next := func() string { rv++; return fmt.Sprint(rv) }
			// A relist spread over three batches, then watch events.
			steps := [][]store.Change{{syncBegin(st)}}
			for b := range batches {
				var cs []store.Change
				for i := range perB {
					o := obj(st, "ns", fmt.Sprintf("o-%03d-%02d", b, i), next(), nil)
					if b < 2 {
						cs = append(cs, listed(st, o))
					} else {
						cs = append(cs, upserted(st, o))
					}
				}
				if b == 1 {
					cs = append(cs, syncEnd(st, next()))
				}
				steps = append(steps, cs)
			}
			// Delete the first object of every batch.
			var dels []store.Change
			for b := range batches {
				dels = append(dels, deleted(st, obj(st, "ns", fmt.Sprintf("o-%03d-00", b), "", nil), next()))
			}
			steps = append(steps, dels)
			for _, cs := range steps {
				if err := s.ApplyChanges(ctx, cs); err != nil {
					t.Errorf("%s: ApplyChanges: %v", account, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var want []store.AccountSummary
	for w := range writers {
		account := fmt.Sprintf("acct-%d", w)
		want = append(want, store.AccountSummary{Account: account, Objects: batches * (perB - 1), Streams: 1})
		lastRV := fmt.Sprint(batches*perB + 1 + batches)
		wantPositions(t, s, []string{account}, map[string]string{account + "/configmaps": lastRV})
		objs, err := s.ListObjects(ctx, store.Query{Account: account})
		if err != nil {
			t.Fatalf("ListObjects: %v", err)
		}
		for _, o := range objs {
			if strings.HasSuffix(o.Name, "-00") {
				t.Errorf("%s: deleted object %s still cached", account, o.Name)
			}
		}
	}
	assertAccounts(t, s, want)
}

// testReadsDuringWrite reads while a large batch is being written: reads
// must neither wait for the writer nor see part of its batch.
func testReadsDuringWrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed := stream("seed", configMaps(), "")
	apply(t, s, relist(seed, "1", obj(seed, "ns", "a", "1", nil), obj(seed, "ns", "b", "1", nil))...)

	const n = 10000
	big := stream("big", configMaps(), "")
	pad := strings.Repeat("x", 512)
	batch := []store.Change{syncBegin(big)}
	for i := range n {
		o := obj(big, "ns", fmt.Sprintf("obj-%05d", i), fmt.Sprint(i), map[string]string{"i": fmt.Sprint(i)})
		o.JSON = []byte(fmt.Sprintf(`{"metadata":{"name":%q},"data":{"pad":%q}}`, o.Name, pad))
		batch = append(batch, listed(big, o))
	}
	batch = append(batch, syncEnd(big, "done"))

	type read struct {
		start, end time.Time
		bigCount   int
	}
	var (
		reads    []read
		writeErr error
		ts, te   time.Time
		done     = make(chan struct{})
	)
	ts = time.Now()
	go func() {
		defer close(done)
		writeErr = s.ApplyChanges(ctx, batch)
		te = time.Now()
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		r := read{start: time.Now()}
		accts, err := s.CachedAccounts(ctx)
		if err != nil {
			t.Fatalf("CachedAccounts during write: %v", err)
		}
		if _, err := s.GetObject(ctx, store.ObjectKey{Account: "seed", Kind: "ConfigMap", Namespace: "ns", Name: "a"}); err != nil {
			t.Fatalf("GetObject during write: %v", err)
		}
		r.end = time.Now()
		for _, a := range accts {
			if a.Account == "big" {
				r.bigCount = a.Objects
			}
		}
		reads = append(reads, r)
	}
	if writeErr != nil {
		t.Fatalf("ApplyChanges: %v", writeErr)
	}
	duration := te.Sub(ts)
	concurrent := 0
	for _, r := range reads {
		if r.bigCount != 0 && r.bigCount != n {
			t.Errorf("a read saw %d of the %d objects of a batch", r.bigCount, n)
		}
		// A read started well after the write began that does not see the
		// batch ran before the commit: it did not wait for the writer.
		if r.start.After(ts.Add(duration/10)) && r.bigCount == 0 {
			concurrent++
		}
	}
	t.Logf("write of %d objects took %v; %d of %d reads ran during it", n, duration, concurrent, len(reads))
	if duration < 50*time.Millisecond {
		t.Logf("write too fast to check that reads do not wait for it")
	} else if concurrent < 3 {
		t.Errorf("only %d reads ran during a %v write: reads wait for the writer", concurrent, duration)
	}
	assertAccounts(t, s, []store.AccountSummary{{Account: "big", Objects: n, Streams: 1}, {Account: "seed", Objects: 2, Streams: 1}})
}
