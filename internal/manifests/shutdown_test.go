package manifests_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/httpapi/httpapitest"
	"github.com/kubesvc/kubesvc/internal/manifests"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// hangingKubernetes never answers: a Pod's log read waits until the
// request's context ends.
type hangingKubernetes struct{ asked chan struct{} }

func (h hangingKubernetes) KubernetesGet(ctx context.Context, _ *http.Request, _, _ string, _ url.Values, _ http.ResponseWriter) {
	h.asked <- struct{}{}
	<-ctx.Done()
}

// A Pod's log read (property files, console output) cut off by the
// server's shutdown answers 503 with the JSON error saying so, not 200
// with an empty body.
func TestLogReadCutByShutdownAnswers503(t *testing.T) {
	st := storetest.SQLite(t)
	e := &env{st: st}
	e.put(t, "", "v1", "pods", "Pod", true, `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"},
  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}`)
	for _, path := range []string{
		"/applications/shop/kubernetes/pods/main/prod/p/main",
		"/instances/main/prod/pod%20p/console?provider=kubernetes",
	} {
		t.Run(path, func(t *testing.T) {
			kube := hangingKubernetes{asked: make(chan struct{}, 1)}
			mux := http.NewServeMux()
			manifests.New(st, kube, slog.New(slog.DiscardHandler)).Routes(mux)
			srvCtx, stop := context.WithCancel(context.Background())
			defer stop()
			srv := httptest.NewUnstartedServer(mux)
			srv.Config.BaseContext = func(net.Listener) context.Context { return httpapi.ServerContext(srvCtx) }
			srv.Start()
			defer srv.Close()
			got := httpapitest.Get(srv.URL + path)
			select {
			case <-kube.asked:
			case a := <-got:
				t.Fatalf("answered before reading the log: %d %q %v", a.Code, a.Body, a.Err)
			case <-time.After(10 * time.Second):
				t.Fatal("the log was not read")
			}
			stop()
			httpapitest.WantShuttingDown(t, got)
		})
	}
}
