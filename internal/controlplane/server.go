package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/logrepeat"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Server is one control-plane replica.
type Server struct {
	kubesvcv1.UnimplementedAgentServiceServer

	cfg      Config
	log      *slog.Logger
	store    store.Store
	registry *registry
	metrics  *metrics
	// metricsReg serves /metrics; extensions register theirs on it.
	metricsReg *prometheus.Registry
	commits    *notifier
	// agentsChanged is signalled when agents or their accounts change.
	agentsChanged chan struct{}

	cluster clusterView  // the whole cluster as last read
	db      dbHealth     // the database as the loops last found it
	refused refusedPeers // rate-limits the warnings of refused peer secrets
	// The loops' errors, each logged once and then summarised while it
	// repeats (a database outage).
	heartbeatErrs, reapErrs, assignErrs, schemaErrs, cleanupErrs *logrepeat.Limiter
	assignPoke                                                   chan struct{} // wakes the assigner; capacity 1
	// assignMu: one assignment decision at a time. Lock order: assignMu,
	// then registry.mu or cluster.mu (leaf locks, never held while taking
	// assignMu). It is held while an Assignment is queued on a session
	// (bounded by assignmentSendTimeout), so that an agent gets the
	// decisions in the order they were taken.
	assignMu  sync.Mutex
	forwarder *http.Client // REST calls to other replicas
	// upgradeForwarder forwards connection upgrades (HTTP/1.1 only).
	upgradeForwarder *http.Client
	// relaying holds a token per Kubernetes API request being relayed
	// (capacity maxRelayed).
	relaying chan struct{}

	// receivers counts the per-session stream readers; Run waits for them
	// after the gRPC server has stopped.
	receivers sync.WaitGroup
	// background counts short best-effort calls to peers; Run waits.
	background sync.WaitGroup

	extensions []Extension      // added by Extend before Run
	unclaimed  UnclaimedResults // set by SetUnclaimedResults before Run

	mu        sync.Mutex // guards the listener addresses below
	grpcAddr  net.Addr
	httpAddr  net.Addr
	listening chan struct{}
}

// New validates cfg and returns a server that persists into st. Call Run to
// serve. The server does not close st.
func New(cfg Config, st store.Store) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("controlplane: invalid configuration: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	forwarder := newForwarder(cfg.ForwardDialTimeout, cfg.PeerTLS)
	agents := newRegistry()
	reg.MustRegister(newAccountStatesCollector(agents))
	if g, ok := st.(groupCommitter); ok {
		registerGroupCommits(reg, g)
	}
	return &Server{
		heartbeatErrs: logrepeat.New(cfg.Log, slog.LevelError, "cluster: heartbeat"),
		reapErrs:      logrepeat.New(cfg.Log, slog.LevelError, "cluster: reap silent replicas"),
		assignErrs:    logrepeat.New(cfg.Log, slog.LevelError, "cluster: assign accounts"),
		schemaErrs:    logrepeat.New(cfg.Log, slog.LevelWarn, "cluster: check the database schema"),
		cleanupErrs:   logrepeat.New(cfg.Log, slog.LevelWarn, "cache cleanup: list cached accounts"),
		cfg:           cfg,
		log:           cfg.Log,
		store:         st,
		registry:      agents,
		metrics:       newMetrics(reg),
		metricsReg:    reg,
		commits:       newNotifier(),

		agentsChanged:    make(chan struct{}, 1),
		assignPoke:       make(chan struct{}, 1),
		forwarder:        forwarder,
		upgradeForwarder: newUpgradeForwarder(forwarder),
		relaying:         make(chan struct{}, maxRelayed),
		listening:        make(chan struct{}),
	}, nil
}

// Extension adds REST routes and a long-lived task to the server (the
// dynamic-accounts feature is one). Routes are registered when Run starts;
// Run runs the task under the server's errgroup.
type Extension interface {
	Routes(mux *http.ServeMux)
	Run(ctx context.Context) error
}

// Metrics is the registry /metrics serves, for extensions' own metrics.
func (s *Server) Metrics() prometheus.Registerer { return s.metricsReg }

// Extend adds e; call it before Run.
func (s *Server) Extend(e Extension) { s.extensions = append(s.extensions, e) }

// Run listens on the gRPC and HTTP addresses and serves until ctx is done
// or a listener fails. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	grpcLis, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("controlplane: listen for agents on %s: %w", s.cfg.GRPCAddr, err)
	}
	httpLis, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("controlplane: listen for REST on %s: %w", s.cfg.HTTPAddr, err)
	}
	// A replica restarted under the same id (a container restarted in its
	// pod) starts clean: what its previous run recorded (agent sessions,
	// their accounts) is over. Replica ids must be unique in a cluster.
	if err := s.store.RemoveReplica(ctx, s.cfg.ID); err != nil {
		grpcLis.Close()
		httpLis.Close()
		return fmt.Errorf("controlplane: clear what a previous run of replica %s recorded: %w", s.cfg.ID, err)
	}
	s.db.ok() // RemoveReplica went through
	s.mu.Lock()
	s.grpcAddr, s.httpAddr = grpcLis.Addr(), httpLis.Addr()
	s.mu.Unlock()
	close(s.listening)

	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxRecvMsgBytes),
		// Stop waits for every Connect handler to return, so Run never
		// returns while a session still uses the store.
		grpc.WaitForHandlers(true),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.cfg.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.cfg.KeepaliveTime, Timeout: s.cfg.KeepaliveTimeout}),
	}
	if s.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.cfg.TLS)))
	}
	if s.cfg.ClientSubjects != nil {
		opts = append(opts, s.subjectInterceptors()...)
	}
	gs := grpc.NewServer(append(opts, s.cfg.GRPCOptions...)...)
	kubesvcv1.RegisterAgentServiceServer(gs, s)
	hs := health.NewServer()
	if !s.cfg.NoHealthService {
		healthpb.RegisterHealthServer(gs, hs)
		hs.SetServingStatus(kubesvcv1.AgentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}

	g, gctx := errgroup.WithContext(ctx)
	// Requests see gctx, so long reads (waitMs) end when shutdown starts;
	// marked, so that their handlers answer 503 then, not nothing as to a
	// client gone (httpapi.Interrupted).
	base := httpapi.ServerContext(gctx)
	hsrv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	for _, e := range s.extensions {
		g.Go(func() error { return e.Run(gctx) })
	}
	g.Go(func() error { return s.runHeartbeat(gctx) })
	g.Go(func() error { return s.runAssigner(gctx) })
	g.Go(func() error { return s.runCleanup(gctx) })
	g.Go(func() error { return s.runSchemaCheck(gctx) })
	g.Go(func() error { return s.runReadiness(gctx, hs) })
	g.Go(func() error {
		// ErrServerStopped: the shutdown below came first (a Run ended
		// right after it began); Serve closed the listener.
		if err := gs.Serve(grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("controlplane: gRPC server: %w", err)
		}
		return nil
	})
	hsrv.ErrorLog = log.New(httpErrorLog{s.log.With("component", "http")}, "", 0)
	if s.cfg.HTTPTLS != nil {
		// The certificate comes from the config's GetConfigForClient
		// (rotation); ServeTLS sets up HTTP/2 on it.
		hsrv.TLSConfig = s.cfg.HTTPTLS
	}
	g.Go(func() error {
		serve := hsrv.Serve
		if hsrv.TLSConfig != nil {
			serve = func(l net.Listener) error { return hsrv.ServeTLS(l, "", "") }
		}
		if err := serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("controlplane: HTTP server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.log.Info("control plane stopping")
		hs.Shutdown()
		s.registry.closeAll(errShutdown)
		gs.Stop()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hsrv.Shutdown(shutdownCtx); err != nil {
			_ = hsrv.Close()
		}
		return nil
	})
	s.log.Info("control plane serving", "id", s.cfg.ID, "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"grpcTLS", s.tlsMode(), "rest", s.cfg.httpScheme())
	err = g.Wait()
	s.receivers.Wait()
	s.background.Wait()
	return err
}

// Addrs returns the gRPC and HTTP listen addresses once Run is listening
// (useful with port 0), or ctx's error.
func (s *Server) Addrs(ctx context.Context) (grpcAddr, httpAddr net.Addr, err error) {
	select {
	case <-s.listening:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grpcAddr, s.httpAddr, nil
}

// tlsMode describes the agents' endpoint security for the start-up log.
func (s *Server) tlsMode() string {
	switch {
	case s.cfg.TLS == nil:
		return "off (plaintext)"
	case s.cfg.ClientSubjects != nil:
		return "on, client certificates " + s.cfg.TLS.ClientAuth.String() + ", x509 subject filters"
	default:
		return "on, client certificates " + s.cfg.TLS.ClientAuth.String()
	}
}

// httpErrorLog carries net/http's own error lines into the structured log:
// failed TLS handshakes (TCP probes, port scans, clients refused for their
// certificate) at debug level, anything else as a warning.
type httpErrorLog struct{ log *slog.Logger }

func (l httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg)
	return len(p), nil
}
