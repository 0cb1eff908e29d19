// Command controlplane runs one control-plane replica: the gRPC endpoint
// agents dial, the SQL cache of what they stream, and the REST API.
//
//	controlplane --config /opt/kubesvc/controlplane.yml
//
// Without --config it runs on the defaults: gRPC :9091, REST :7002, SQLite
// file kubesvc.db in the working directory. See docs/controlplane-config.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/grpclogs"
	"github.com/kubesvc/kubesvc/internal/operations"
	"github.com/kubesvc/kubesvc/internal/store"
)

type paths []string

func (p *paths) String() string     { return strings.Join(*p, ",") }
func (p *paths) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var files paths
	flag.Var(&files, "config", "configuration file (repeatable; later files override earlier ones)")
	flag.Parse()
	cfg, err := cpconfig.Load(files...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(2)
	}
	log := slog.New(cfg.Logging.NewHandler(os.Stderr))
	// client-go logs through klog: into the same log, in its format.
	klog.SetSlogLogger(log.With("component", "client-go"))
	// grpc-go's own warnings (a failed TLS handshake) too.
	grpclogs.Install(log)
	if len(files) == 0 {
		log.Warn(noConfigWarning, "grpc", listenAddr(cfg.GRPC.Address, cfg.GRPC.Port),
			"rest", listenAddr(cfg.Server.Address, cfg.Server.Port), "sql", fmt.Sprintf("%s %s", cfg.SQL.Driver, cfg.SQL.Path))
	}
	for _, key := range cfg.Unsupported {
		log.Warn("configuration key not acted on by this build; ignored", "key", key)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("control plane stopped", "err", err)
		os.Exit(1)
	}
}

// noConfigWarning is logged when the control plane starts without -config:
// fine for a try on a laptop, not what a deployment means to do.
const noConfigWarning = "no configuration file given (-config FILE): running on the defaults, " +
	"listening on every interface, with an SQLite database in the working directory"

// listenAddr is addr:port as logged, "*" for every interface.
func listenAddr(addr string, port int) string {
	if addr == "" {
		addr = "*"
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

func run(ctx context.Context, cfg *cpconfig.Config, log *slog.Logger) error {
	// sql.path names the SQLite file; the server drivers take sql.dsn.
	dsnOrPath := cfg.SQL.DSN
	if cfg.SQL.Driver == cpconfig.DriverSQLite {
		dsnOrPath = cfg.SQL.Path
	}
	st, err := store.Open(ctx, string(cfg.SQL.Driver), dsnOrPath, log.With("component", "store"))
	if err != nil {
		return fmt.Errorf("sql (%s): %w", cfg.SQL.Driver, err)
	}
	defer st.Close()
	scfg := cfg.ServerConfig(log)
	tlsCfg, subjects, err := cfg.ServerTLS(log.With("component", "tls"))
	if err != nil {
		return err
	}
	scfg.TLS = tlsCfg
	if subjects != nil {
		scfg.ClientSubjects = subjects
	}
	if scfg.HTTPTLS, err = cfg.RESTTLS(log.With("component", "tls")); err != nil {
		return err
	}
	if scfg.PeerTLS, err = cfg.PeerTLS(log.With("component", "tls")); err != nil {
		return err
	}
	if cfg.Server.SSL.Enabled && cfg.Cluster.Mode == cpconfig.ClusterKubernetes && cfg.Cluster.PeerServerName == "" {
		log.Warn("peers found through EndpointSlices are reached by pod IP, which their REST certificates must then name; " +
			"set kubesvc.peerTls.serverName to the name the certificates carry (e.g. the Service's DNS name), or forwards will fail verification")
	}
	if scfg.ProxySubjects, err = cfg.ProxyFilter(); err != nil {
		return err
	}
	if cfg.Proxy && scfg.ProxySubjects == nil {
		log.Warn("kubesvc.proxy.enabled: the Kubernetes API proxy is open to whoever reaches the REST API, with the agents' credentials " +
			"(within what each agent relays, kubernetes.proxy.*); restrict it to client certificates (kubesvc.proxy.x509.filters) or keep the REST port behind an authenticating gateway")
	}
	if scfg.BaseURL == "" {
		scfg.BaseURL = defaultBaseURL(cfg)
	}
	disc, err := peerDiscovery(cfg, log)
	if err != nil {
		return err
	}
	if disc != nil {
		scfg.Peers = disc
	}
	srv, err := controlplane.New(scfg, st)
	if err != nil {
		return err
	}
	if disc != nil {
		srv.Extend(disc)
	}
	if err := extendDynamic(srv, st, cfg, log); err != nil {
		return err
	}
	ops := operations.New(operations.Config{
		Wait: cfg.Cache.OperationWait, Retention: cfg.OperationHistoryRetention, ReplicaID: cfg.ID,
		Log: log.With("component", "operations"), Metrics: srv.Metrics(),
	}, st, srv)
	srv.Extend(ops)
	srv.SetUnclaimedResults(ops)
	return srv.Run(ctx)
}
