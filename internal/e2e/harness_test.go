package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/operations"
	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
	"github.com/kubesvc/kubesvc/internal/testenv"
	"github.com/kubesvc/kubesvc/internal/testlog"
	"github.com/kubesvc/kubesvc/internal/testnet"
)

// testLogger writes to the test log only when -v or on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// wire records every message agents send to the control plane, encoded.
type wire struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *wire) interceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &recordingStream{ServerStream: ss, w: w})
	}
}

func (w *wire) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

type recordingStream struct {
	grpc.ServerStream
	w *wire
}

func (s *recordingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		if pm, ok := m.(proto.Message); ok {
			b, _ := proto.Marshal(pm)
			s.w.mu.Lock()
			s.w.buf.Write(b)
			s.w.mu.Unlock()
		}
	}
	return err
}

// controlPlane is a control plane running in the test process.
type controlPlane struct {
	srv    *controlplane.Server
	st     store.Store
	cancel context.CancelFunc
	done   chan error
	grpc   string // host:port
	http   string // http://host:port
}

type cpOptions struct {
	dbPath string
	// driver and dsn select a MySQL or PostgreSQL store instead of SQLite
	// at dbPath (see backendDB).
	driver, dsn string
	grpcAddr    string // "" picks a free port
	wire        *wire
	// dynamic enables Dynamic Accounts with this configuration (its
	// Enabled field is ignored; set dynamicOff to register it disabled).
	dynamic    *dynaccounts.Config
	dynamicOff bool
	// secrets is the cluster whose Secrets back encryptedFile references.
	secrets *testenv.Cluster
	// sealKey seals inline kubeconfigs; nil refuses them.
	sealKey []byte
	// logs, when set, also receives every log line.
	logs *testlog.Buffer
	// tls and subjects secure the agents' endpoint (nil: plaintext).
	tls      *tls.Config
	subjects controlplane.SubjectFilter
	// httpAddr fixes the REST address ("" picks a free port); baseURL is
	// where the other replicas reach it; httpTLS serves it over TLS and
	// peerTLS secures this replica's requests to the others.
	httpAddr, baseURL string
	httpTLS, peerTLS  *tls.Config
	// grpcOpts are added to the gRPC server's options (interceptors).
	grpcOpts []grpc.ServerOption
	id       string
	// opWait enables the operation API with this wait (operationWaitMs).
	opWait time.Duration
	// accountCleanup is kubesvc.cache.accountCleanupFrequencySeconds.
	accountCleanup time.Duration
	// proxy serves the Kubernetes API proxy (kubesvc.proxy.enabled);
	// proxySubjects restricts it (kubesvc.proxy.x509.filters).
	proxy         bool
	proxySubjects controlplane.SubjectFilter
	proxyStall    time.Duration
	// agentTimeout is kubesvc.agentTimeoutSeconds (0: the default).
	agentTimeout time.Duration
	// assignInterval is how often the replica refreshes its view of the
	// cluster (the other replicas' agents) and assigns accounts (0: the
	// default, 1 s).
	assignInterval time.Duration
	// extend registers more extensions on the Dynamic Accounts manager
	// (with dynamic set), e.g. the Clouddriver accounts migration.
	extend func(srv *controlplane.Server, st store.Store, mgr *dynaccounts.Manager)
}

func startControlPlane(t *testing.T, o cpOptions) *controlPlane {
	t.Helper()
	if o.grpcAddr == "" {
		o.grpcAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	var st store.Store
	var err error
	if o.driver != "" {
		st, err = store.Open(ctx, o.driver, o.dsn, slog.New(slog.DiscardHandler))
	} else {
		st, err = store.OpenSQLite(ctx, o.dbPath, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		cancel()
		t.Fatalf("open store: %v", err)
	}
	if o.id == "" {
		o.id = "cp-test"
	}
	log := testLogger(t)
	if o.logs != nil {
		// Tagged, as replicas share the buffer.
		log = slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, o.logs), nil)).With("replica", o.id)
	}
	if o.httpAddr == "" {
		o.httpAddr = "127.0.0.1:0"
	}
	cfg := controlplane.Config{ID: o.id, GRPCAddr: o.grpcAddr, HTTPAddr: o.httpAddr, Log: log.With("component", "controlplane"),
		AccountCleanup: o.accountCleanup, TLS: o.tls, ClientSubjects: o.subjects,
		BaseURL: o.baseURL, HTTPTLS: o.httpTLS, PeerTLS: o.peerTLS, Proxy: o.proxy, ProxySubjects: o.proxySubjects, ProxyStall: o.proxyStall,
		AgentTimeout: o.agentTimeout, AssignInterval: o.assignInterval}
	if o.wire != nil {
		cfg.GRPCOptions = append(cfg.GRPCOptions, grpc.StreamInterceptor(o.wire.interceptor()))
	}
	cfg.GRPCOptions = append(cfg.GRPCOptions, o.grpcOpts...)
	srv, err := controlplane.New(cfg, st)
	if err != nil {
		cancel()
		st.Close()
		t.Fatal(err)
	}
	if o.dynamic != nil {
		dc := *o.dynamic
		dc.Enabled, dc.ReplicaID, dc.Log, dc.Metrics = !o.dynamicOff, o.id, log.With("component", "dynaccounts"), srv.Metrics()
		sealer, err := credentials.NewSealer()
		if o.sealKey != nil {
			sealer, err = credentials.NewSealer(o.sealKey)
		}
		if err != nil {
			t.Fatal(err)
		}
		r := &credentials.Resolver{Sealer: sealer, Namespace: "default"}
		if o.secrets != nil {
			cs, err := kubernetes.NewForConfig(o.secrets.RESTConfig())
			if err != nil {
				t.Fatal(err)
			}
			r.Client = cs
		}
		mgr := dynaccounts.New(dc, st, srv, dynaccounts.NewCredentials(r))
		srv.Extend(mgr)
		if o.extend != nil {
			o.extend(srv, st, mgr)
		}
	}
	if o.opWait > 0 {
		ops := operations.New(operations.Config{Wait: o.opWait, ReplicaID: o.id, Log: log.With("component", "operations"), Metrics: srv.Metrics()}, st, srv)
		srv.Extend(ops)
		srv.SetUnclaimedResults(ops)
	}
	cp := &controlPlane{srv: srv, st: st, cancel: cancel, done: make(chan error, 1)}
	go func() { cp.done <- srv.Run(ctx) }()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	g, h, err := srv.Addrs(actx)
	if err != nil {
		cp.stop(t)
		t.Fatalf("control plane did not listen: %v", err)
	}
	cp.grpc, cp.http = g.String(), "http://"+h.String()
	if o.httpTLS != nil {
		cp.http = "https://" + h.String()
	}
	t.Cleanup(func() { cp.stop(t) })
	return cp
}

// stop shuts the control plane down and waits for it; safe to call twice.
func (cp *controlPlane) stop(t *testing.T) {
	if cp.cancel == nil {
		return
	}
	cp.cancel()
	cp.cancel = nil
	if err := <-cp.done; err != nil {
		t.Errorf("control plane Run: %v", err)
	}
	if err := cp.st.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

// runningAgent is an agent running in the test process.
type runningAgent struct {
	*agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, target string, accounts ...agent.Account) *runningAgent {
	t.Helper()
	return startAgentAs(t, "agent-"+strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), "zone-test", target, accounts...)
}

func startAgentAs(t *testing.T, id, zone, target string, accounts ...agent.Account) *runningAgent {
	t.Helper()
	return startAgentWith(t, id, zone, target, nil, accounts...)
}

// startAgentWith starts an agent whose configuration mod adjusts (nil:
// the tests' defaults).
func startAgentWith(t *testing.T, id, zone, target string, mod func(*agent.Config), accounts ...agent.Account) *runningAgent {
	t.Helper()
	cfg := agent.Config{
		ID: id, ZoneID: zone, Version: "test",
		Target: target, Accounts: accounts, KeepaliveTime: 10 * time.Second, KeepaliveTimeout: 5 * time.Second,
		NewExecutor: agent.OpsExecutors(ops.Options{}),
		Backoff:     agent.Backoff{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		Log:         testLogger(t).With("component", "agent"),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ra.done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
	return ra
}

// eventually polls cond until it returns "" or the deadline passes; then
// the test fails with cond's last explanation.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cachedObject mirrors the read API's object.
type cachedObject struct {
	Account, APIVersion, Kind, Namespace, Name, ResourceVersion, Application string
	Labels                                                                   map[string]string
	Manifest                                                                 json.RawMessage
}

func getJSON(base, path string, q url.Values, into any) (int, []byte, error) {
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, into); err != nil {
			return resp.StatusCode, body, fmt.Errorf("decode %s: %w", u, err)
		}
	}
	return resp.StatusCode, body, nil
}

// list queries the read API, failing the test on transport errors.
func (cp *controlPlane) list(t *testing.T, q url.Values) []cachedObject {
	t.Helper()
	var out []cachedObject
	code, body, err := getJSON(cp.http, "/cache/objects", q, &out)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /cache/objects?%s: %d %s %v", q.Encode(), code, body, err)
	}
	return out
}

func names(objs []cachedObject) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.Namespace+"/"+o.Name)
	}
	return out
}

// freeAddr returns a loopback address reserved for the test
// (testnet.Reserve): nothing listens there until the test does, and no
// other socket takes its port meanwhile, also while a control plane stops
// and comes back on it.
func freeAddr(t *testing.T) string { return testnet.Reserve(t) }

// dirBytes concatenates every file under dir (the SQLite database, its WAL
// and shared-memory files).
func dirBytes(t *testing.T, dir string) []byte {
	var all []byte
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			all = append(all, b...)
		}
		return nil
	})
	return all
}

// watching waits until every agent serving the account reports all its
// streams synced; the report follows the streams' last SyncEnd on the
// stream, so everything listed so far is persisted.
func (cp *controlPlane) watching(t *testing.T, account string) {
	t.Helper()
	eventually(t, wait, func() string {
		var a struct{ AgentStates map[string]string }
		code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/"+account, nil, &a)
		if err != nil || code != http.StatusOK {
			return fmt.Sprintf("account %s: %d %s %v", account, code, body, err)
		}
		for agent, st := range a.AgentStates {
			if st != "WATCHING" {
				return fmt.Sprintf("account %s: agent %s is %s", account, agent, st)
			}
		}
		return ""
	})
}

// backendDB creates an empty database on srv's server for the test (the
// test skips without the server, or fails on CI) and returns the store
// driver and DSN for cpOptions.
func backendDB(t *testing.T, srv storetest.Server) (driver, dsn string) {
	t.Helper()
	dbs := storetest.Connect(t, srv)
	return srv.StoreDriver(), dbs.Create(t, t)
}
