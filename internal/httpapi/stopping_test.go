package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A request context that ended is a 503 when the server stops, and no
// answer at all when the client left (nobody to read it).
func TestInterrupted(t *testing.T) {
	for _, c := range []struct {
		name           string
		serverStopped  bool
		clientLeft     bool
		interrupted    bool
		wantCode       int
		wantInTheError string
	}{
		{name: "running"},
		{name: "client left", clientLeft: true, interrupted: true},
		{name: "server stopping", serverStopped: true, interrupted: true, wantCode: 503, wantInTheError: "shutting down"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srvCtx, stop := context.WithCancel(context.Background())
			defer stop()
			// As net/http builds it: the connection's context derives from
			// BaseContext's, the request's from the connection's.
			reqCtx, leave := context.WithCancel(ServerContext(srvCtx))
			defer leave()
			if c.serverStopped {
				stop()
			}
			if c.clientLeft {
				leave()
			}
			r := httptest.NewRequestWithContext(reqCtx, http.MethodGet, "/x", nil)
			rec := httptest.NewRecorder()
			if got := Interrupted(rec, r); got != c.interrupted {
				t.Fatalf("Interrupted: %v", got)
			}
			if got := Stopping(reqCtx); got != c.serverStopped {
				t.Errorf("Stopping: %v", got)
			}
			switch {
			case c.wantCode == 0 && (rec.Body.Len() > 0 || rec.Code != 200 || len(rec.Header()) > 0):
				t.Errorf("wrote %d %q", rec.Code, rec.Body)
			case c.wantCode != 0 && (rec.Code != c.wantCode || !strings.Contains(rec.Body.String(), c.wantInTheError)):
				t.Errorf("wrote %d %q, want %d naming %q", rec.Code, rec.Body, c.wantCode, c.wantInTheError)
			}
		})
	}
	// A context not from ServerContext (a test's server) never stops.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Stopping(ctx) {
		t.Error("Stopping without ServerContext")
	}
}
