package controlplane

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/httpapi/httpapitest"
	"github.com/kubesvc/kubesvc/internal/store"
)

// A read waiting (waitMs) when the control plane starts shutting down is
// answered 503 with the JSON error saying so, not 200 with an empty body,
// which a client reads as a success.
func TestWaitCutByShutdownAnswers503(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "cache.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reading := make(chan struct{}, 1)
	srv, err := New(Config{ID: "cp-test", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, readsOf{Store: st, name: "never", reading: reading})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	_, httpAddr, err := srv.Addrs(actx)
	if err != nil {
		t.Fatal(err)
	}
	got := httpapitest.Get("http://" + httpAddr.String() + "/cache/objects/static1/ConfigMap/never?namespace=default&waitMs=60000")
	// Once the handler has read the cache it waits (for a commit, a poll
	// or the end of its context), and the connection is active: the
	// shutdown waits for its answer.
	select {
	case <-reading:
	case a := <-got:
		t.Fatalf("answered before waiting: %+v", a)
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not reach the cache in 30s")
	}
	cancel()
	httpapitest.WantShuttingDown(t, got)
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A proxied request waiting for the agent's answer when the control plane
// starts shutting down is answered 503 (a Kubernetes Status saying so);
// when its client left, nothing is written.
func TestProxyWaitCutByShutdown(t *testing.T) {
	for _, stopping := range []bool{true, false} {
		srvCtx, stop := context.WithCancel(context.Background())
		reqCtx, leave := context.WithCancel(httpapi.ServerContext(srvCtx))
		sess := &session{agentID: "a1", relays: map[string]*relayed{}, out: make(chan *kubesvcv1.ControlMessage, 4), done: make(chan struct{})}
		r := httptest.NewRequestWithContext(reqCtx, http.MethodGet, "/agents/kubernetes/accounts/main/proxy/api/v1/pods", nil)
		rec := httptest.NewRecorder()
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			(&Server{}).relay(rec, r, sess, &kubesvcv1.ProxyRequest{Account: "main", Method: http.MethodGet, Path: "/api/v1/pods"})
		}()
		<-sess.out // the request went to the agent, which does not answer
		if stopping {
			stop()
		} else {
			leave()
		}
		<-finished
		switch {
		case stopping && (rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down")):
			t.Errorf("stopping: %d %q, want 503 saying the control plane is shutting down", rec.Code, rec.Body)
		case !stopping && rec.Body.Len() > 0:
			t.Errorf("client gone: wrote %d %q", rec.Code, rec.Body)
		}
		stop()
		leave()
	}
}

// readsOf signals on reading (without blocking) every read of the cached
// objects named name.
type readsOf struct {
	store.Store
	name    string
	reading chan struct{}
}

func (r readsOf) ListObjects(ctx context.Context, q store.Query) ([]store.Object, error) {
	if q.Name == r.name {
		select {
		case r.reading <- struct{}{}:
		default:
		}
	}
	return r.Store.ListObjects(ctx, q)
}

func (r readsOf) GetObject(ctx context.Context, key store.ObjectKey) (store.Object, error) {
	if key.Name == r.name {
		select {
		case r.reading <- struct{}{}:
		default:
		}
	}
	return r.Store.GetObject(ctx, key)
}
