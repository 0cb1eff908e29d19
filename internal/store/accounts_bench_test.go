package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// What reconciling dynamic accounts reads every second on every replica,
// with 5,000 accounts each holding a 16 KiB sealed kubeconfig: the whole
// rows (ListAccounts, the baseline) against their states (AccountStates).
func BenchmarkReconcileRead(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "b.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sealed := strings.Repeat("s", 16<<10)
	for i := range 5000 {
		name := fmt.Sprintf("account-%04d", i)
		if _, err := st.CreateAccount(ctx, store.Account{Name: name, State: "ACTIVE", Definition: []byte(`{"name":"` + name + `","namespaces":["a","b"]}`),
			KubeconfigRef: "inline", KubeconfigSealed: sealed}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("ListAccounts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.ListAccounts(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AccountStates", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.AccountStates(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
