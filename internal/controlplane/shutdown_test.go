package controlplane

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/httpapi"
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
	srv, err := New(Config{ID: "cp-test", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, st)
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
	type answer struct {
		code int
		ct   string
		body string
		err  error
	}
	got := make(chan answer, 1)
	for _, path := range []string{
		"/cache/objects/static1/ConfigMap/never?namespace=default&waitMs=60000",
	} {
		go func() {
			resp, err := http.Get("http://" + httpAddr.String() + path)
			if err != nil {
				got <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			got <- answer{code: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: string(b), err: err}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the request is waiting
	cancel()
	var a answer
	select {
	case a = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10 s after shutdown began")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	var e struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	if a.code != http.StatusServiceUnavailable || json.Unmarshal([]byte(a.body), &e) != nil || !strings.Contains(e.Message, "shutting down") {
		t.Errorf("answer %d %q %q; want 503 with a JSON error saying the control plane is shutting down", a.code, a.ct, a.body)
	}
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
