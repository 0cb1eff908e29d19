package operations

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/httpapi/httpapitest"
)

// GET /task/{id}?waitMs cut off by the server's shutdown answers 503 with
// the JSON error saying so (its client is still there), not a 500 of a
// store read on the ended context, nor an empty answer.
func TestTaskWaitCutByShutdownAnswers503(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	agents := &answeringAgents{release: make(chan struct{}), result: &kubesvcv1.OperationResult{Payload: []byte(`{"manifests": []}`),
		Cached: &kubesvcv1.CachedObjects{Objects: []*kubesvcv1.ObjectRef{{Kind: "ConfigMap", Namespace: "default", Name: "x", ResourceVersion: "7"}}}}}
	m := New(Config{ReplicaID: "r1", Log: slog.New(slog.DiscardHandler)}, st, agents)
	defer m.wg.Wait()
	defer close(agents.release)
	mux := http.NewServeMux()
	m.Routes(mux)
	srvCtx, stop := context.WithCancel(ctx)
	defer stop()
	// The task is running: once its handler has started, the request
	// waits for it (or for the end of its context).
	entered := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		mux.ServeHTTP(w, r)
	}))
	srv.Config.BaseContext = func(net.Listener) context.Context { return httpapi.ServerContext(srvCtx) }
	srv.Start()
	defer srv.Close()
	if _, err := m.start(ctx, "waiting", []op{{Type: "deployManifest", Account: "main", Description: json.RawMessage(`{"account": "main"}`)}}); err != nil {
		t.Fatal(err)
	}
	got := httpapitest.Get(srv.URL + "/task/waiting?waitMs=60000")
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not reach its handler in 30s")
	}
	stop()
	httpapitest.WantShuttingDown(t, got)
}
