package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/testlog"
)

// A replica whose database (PostgreSQL, through a port that closes) stops
// answering turns not ready within UnreadyAfter: /health/readiness answers
// 503 saying why and the agent service's gRPC health NOT_SERVING, while
// /health/liveness stays 200. Its loops log the outage's error once, not
// every second, and say when the database is back; it is ready again.
func TestNotReadyWhileTheDatabaseIsUnreachable(t *testing.T) {
	st, proxy := postgresBehindProxy(t, "&connect_timeout=2")
	logs := &testlog.Buffer{}
	srv, grpcAddr, httpAddr := startOn(t, Config{ID: "cp", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", HeartbeatPeriod: time.Second,
		UnreadyAfter: 2 * time.Second, Log: slog.New(slog.NewTextHandler(logs, nil))}, st)
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	grpcHealth := func() healthpb.HealthCheckResponse_ServingStatus {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{Service: kubesvcv1.AgentService_ServiceDesc.ServiceName})
		if err != nil {
			t.Fatalf("gRPC health: %v", err)
		}
		return res.GetStatus()
	}
	get := func(path string) (int, map[string]string) {
		res, err := http.Get("http://" + httpAddr.String() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return res.StatusCode, body
	}
	waitReadiness := func(want int) map[string]string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := get("/health/readiness")
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/health/readiness answered %d %v for 20s, want %d; log:\n%s", code, body, want, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitReadiness(http.StatusOK)
	if st := grpcHealth(); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health %s before the outage, want SERVING", st)
	}

	proxy.Cut()
	// The replica counts from its last successful round trip (it cannot
	// know when the database went away): one under way as the port
	// closed may still succeed, one made a while before may be its last.
	srv.db.mu.Lock()
	lastOK := srv.db.lastOK
	srv.db.mu.Unlock()
	body := waitReadiness(http.StatusServiceUnavailable)
	if took := time.Since(lastOK); took < 2*time.Second {
		t.Errorf("not ready %s after the last successful round trip to the database, before UnreadyAfter (2s)", took)
	}
	if body["status"] != "OUT_OF_SERVICE" || !strings.Contains(body["reason"], "no successful round trip to the database") {
		t.Errorf("/health/readiness body %v, want OUT_OF_SERVICE and why", body)
	}
	if code, _ := get("/health/liveness"); code != http.StatusOK {
		t.Errorf("/health/liveness answered %d during the outage, want 200: a database outage must not restart replicas", code)
	}
	if code, body := get("/health"); code != http.StatusServiceUnavailable || body["status"] != "DOWN" || body["reason"] == "" {
		t.Errorf("/health answered %d %v during the outage, want 503 DOWN with the reason", code, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for grpcHealth() != healthpb.HealthCheckResponse_NOT_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("the agent service's gRPC health stayed SERVING while not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(4 * time.Second) // the assigner fails every second meanwhile

	proxy.Restore(t)
	waitReadiness(http.StatusOK)
	deadline = time.Now().Add(5 * time.Second)
	for grpcHealth() != healthpb.HealthCheckResponse_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("the agent service's gRPC health stayed NOT_SERVING once ready again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "cluster: assign accounts: database reachable again after") {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery line logged:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	l := logs.String()
	// One line per distinct error: the connections cut under way fail in
	// their own words (naming their local ports, some), then every new
	// one is refused, the same error every second.
	var assignErrs []string
	for line := range strings.Lines(l) {
		if strings.Contains(line, `level=ERROR msg="cluster: assign accounts"`) {
			_, rest, _ := strings.Cut(line, " err=")
			err, qerr := strconv.QuotedPrefix(rest)
			if qerr != nil {
				err, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
			}
			assignErrs = append(assignErrs, err)
		}
	}
	if len(assignErrs) == 0 {
		t.Errorf("the assigner logged no error during an outage of ~7s:\n%s", l)
	}
	for i, e := range assignErrs {
		if slices.Contains(assignErrs[:i], e) {
			t.Errorf("the assigner logged the same error again during an outage of ~7s (it fails every second), want one line per distinct error: %s\n%s", e, l)
			break
		}
	}
	for _, want := range []string{"level=WARN msg=\"not ready:", "level=INFO msg=\"ready again"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

// A database that stops answering without an error (packets dropped, no
// reset) makes the replica not ready too, heartbeats off: the assigner's
// reads are bounded.
func TestNotReadyWhileTheDatabaseIsSilent(t *testing.T) {
	st, proxy := postgresBehindProxy(t, "")
	_, httpAddr := runOn(t, Config{ID: "cp", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", NoHeartbeat: true,
		AssignInterval: 100 * time.Millisecond, UnreadyAfter: time.Second, Log: slog.New(slog.DiscardHandler)}, st)
	readiness := func() int {
		res, err := http.Get("http://" + httpAddr.String() + "/health/readiness")
		if err != nil {
			t.Fatalf("GET /health/readiness: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := readiness(); code != http.StatusOK {
		t.Fatalf("readiness %d before the database went silent", code)
	}
	proxy.Freeze(true)
	deadline := time.Now().Add(30 * time.Second)
	for readiness() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("still ready 30 s after the database went silent")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
