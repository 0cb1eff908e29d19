package store

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkConcurrentApply is agent sessions persisting one-change
// batches at once on SQLite: with group commit, and, as the baseline in
// the same run, with one transaction per call (as before group commit,
// and as on the server databases). The two take turns, in rounds of an
// eighth of the calls each, each first in half of them, so that the
// machine's load falls on both;
// ratio is grouped changes/s over one-transaction-each changes/s.
//
//	go test -run XXX -bench ConcurrentApply -benchtime 40000x ./internal/store
func BenchmarkConcurrentApply(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			alone, grouped := newBenchStore(b, false), newBenchStore(b, true)
			var took [2]time.Duration
			const rounds = 8
			for round := range rounds {
				order := []int{0, 1}
				if round%2 == 1 {
					order = []int{1, 0} // the second to run has an edge: each goes second half the time
				}
				for _, i := range order {
					took[i] += concurrentApply(b, []*sqlStore{alone, grouped}[i], writers, round*b.N/rounds, (round+1)*b.N/rounds)
				}
			}
			b.ReportMetric(float64(b.N)/took[0].Seconds(), "alone-changes/s")
			b.ReportMetric(float64(b.N)/took[1].Seconds(), "grouped-changes/s")
			b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "ratio")
		})
	}
}

func newBenchStore(b *testing.B, grouped bool) *sqlStore {
	st, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), fmt.Sprint(grouped, ".db")), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	s := st.(*sqlStore)
	s.d.groupCommit = grouped
	return s
}

// concurrentApply makes calls from to to-1 from writers goroutines, each
// writing its own account's objects, and returns how long they took.
func concurrentApply(b *testing.B, s *sqlStore, writers, from, to int) time.Duration {
	ctx := context.Background()
	body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"p":"` + fmt.Sprint(make([]byte, 200)) + `"}}`)
	var n atomic.Int64
	n.Store(int64(from))
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		account := fmt.Sprint("a", w)
		wg.Go(func() {
			for {
				i := n.Add(1)
				if i > int64(to) {
					return
				}
				c := upsertOf(account, fmt.Sprint("cm-", i%1000), fmt.Sprint(i+1))
				c.Object.JSON = body
				if err := s.ApplyChanges(ctx, []Change{c}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
