package store

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkConcurrentApply is many agent sessions persisting one-change
// batches at once on SQLite, with group commit and, as the baseline in
// the same run, with one transaction per call (as before it, and as on
// the server databases). Compare the changes/s of the two.
//
//	go test -run XXX -bench ConcurrentApply ./internal/store
func BenchmarkConcurrentApply(b *testing.B) {
	for _, writers := range []int{1, 16} {
		for _, mode := range []struct {
			name    string
			grouped bool
		}{{"one-transaction-each", false}, {"grouped", true}} {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, mode.name), func(b *testing.B) {
				benchConcurrentApply(b, writers, mode.grouped)
			})
		}
	}
}

func benchConcurrentApply(b *testing.B, writers int, grouped bool) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "b.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	s.d.groupCommit = grouped
	body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"p":"` + fmt.Sprint(make([]byte, 200)) + `"}}`)
	var n atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range writers {
		account := fmt.Sprint("a", w)
		wg.Go(func() {
			for {
				i := n.Add(1)
				if i > int64(b.N) {
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}
