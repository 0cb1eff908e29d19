package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

func BenchmarkApplySingleChange(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "b.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	k := store.StreamKey{Account: "a", Resource: store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"p":"` + fmt.Sprint(make([]byte, 200)) + `"}}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := &store.Object{ObjectKey: store.ObjectKey{Account: "a", Kind: "ConfigMap", Namespace: "ns", Name: fmt.Sprintf("cm-%d", i)}, ResourceVersion: fmt.Sprint(i + 1), JSON: body}
		if err := st.ApplyChanges(ctx, []store.Change{{Type: store.Upserted, Stream: k, Object: o}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetObject(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "b.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	k := store.StreamKey{Account: "a", Resource: store.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	o := &store.Object{ObjectKey: store.ObjectKey{Account: "a", Kind: "ConfigMap", Namespace: "ns", Name: "x"}, ResourceVersion: "1", JSON: []byte(`{}`)}
	if err := st.ApplyChanges(ctx, []store.Change{{Type: store.Upserted, Stream: k, Object: o}}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := st.GetObject(ctx, o.ObjectKey); err != nil {
			b.Fatal(err)
		}
	}
}
