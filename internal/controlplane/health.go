package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/httpapi"
)

// dbHealth is what the replica's loops learn of the shared database: when
// a round trip last succeeded, and the last error since. The assigner
// reads the cluster's state every AssignInterval and the heartbeat writes
// every HeartbeatPeriod: both report here.
type dbHealth struct {
	mu      sync.Mutex
	lastOK  time.Time
	lastErr error // since lastOK; nil when the last round trip succeeded
}

func (h *dbHealth) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastOK, h.lastErr = time.Now(), nil
}

func (h *dbHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
}

// readiness tells whether the replica can serve: not when its database
// round trips have failed for longer than grace (a short blip is not worth
// taking it out of the Service). reason says why not.
func (h *dbHealth) readiness(now time.Time, grace time.Duration) (ready bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastErr == nil || now.Sub(h.lastOK) < grace {
		return true, ""
	}
	return false, fmt.Sprintf("no successful round trip to the database (kubesvc.sql) for %s; last error: %v",
		now.Sub(h.lastOK).Round(time.Second), h.lastErr)
}

// healthRoutes serves the probes: /health/liveness answers 200 while the
// process serves HTTP (a database outage must not restart every replica);
// /health/readiness answers 503, saying why, while the replica cannot
// reach its database (it cannot serve reads, record its agents' changes
// or take part in the cluster), 200 otherwise.
func (s *Server) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /health/liveness", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "UP"})
	})
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, _ *http.Request) {
		if ready, reason := s.db.readiness(time.Now(), s.cfg.UnreadyAfter); !ready {
			httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "OUT_OF_SERVICE", "reason": reason})
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "UP"})
	})
}

// runReadiness keeps the gRPC health of the agent service (what a gRPC
// load balancer or probe checks) in step with /health/readiness, and logs
// each change. The overall status ("") stays SERVING, as liveness.
func (s *Server) runReadiness(ctx context.Context, hs *health.Server) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	wasReady := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ready, reason := s.db.readiness(time.Now(), s.cfg.UnreadyAfter)
		if ready == wasReady {
			continue
		}
		wasReady = ready
		status := healthpb.HealthCheckResponse_SERVING
		if ready {
			s.log.Info("ready again: the database answers")
		} else {
			status = healthpb.HealthCheckResponse_NOT_SERVING
			s.log.Warn("not ready: /health/readiness answers 503 and the agent service's gRPC health NOT_SERVING until the database answers", "reason", reason)
		}
		if !s.cfg.NoHealthService {
			hs.SetServingStatus(kubesvcv1.AgentService_ServiceDesc.ServiceName, status)
		}
	}
}
