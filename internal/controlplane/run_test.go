package controlplane

import (
	"context"
	"net"
	"net/url"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testnet"
)

// runOn runs a server of cfg on st until the test ends (Run must then
// return nil), and returns its addresses once it listens.
func runOn(t *testing.T, cfg Config, st store.Store) (grpcAddr, httpAddr net.Addr) {
	t.Helper()
	_, grpcAddr, httpAddr = startOn(t, cfg, st)
	return grpcAddr, httpAddr
}

// startOn is runOn, returning the server too.
func startOn(t *testing.T, cfg Config, st store.Store) (_ *Server, grpcAddr, httpAddr net.Addr) {
	t.Helper()
	s, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica %s: %v", cfg.ID, err)
		}
	})
	grpcAddr, httpAddr, err = s.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, grpcAddr, httpAddr
}

// postgresBehindProxy opens a store on a fresh PostgreSQL database reached
// through a loopback proxy (to cut or freeze), with query added to the
// DSN; it skips the test without PostgreSQL, or with a DSN that is not a
// URL with a host.
func postgresBehindProxy(t *testing.T, query string) (store.Store, *testnet.Proxy) {
	t.Helper()
	dsn := storetest.Connect(t, storetest.Postgres()).Create(t, t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("KUBESVC_TEST_POSTGRES_DSN is not a URL with a host (%v): cannot route it through a proxy", err)
	}
	proxy := testnet.Start(t, u.Host)
	u.Host = proxy.Addr()
	u.RawQuery += query
	st, err := store.OpenPostgres(context.Background(), u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Freeze(false); proxy.Cut(); _ = st.Close() })
	return st, proxy
}
