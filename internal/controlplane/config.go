package controlplane

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
)

// Config configures a Server. Zero values take the defaults documented on
// each field; Validate reports the first invalid field by its YAML key.
type Config struct {
	// ID names this replica in Welcome messages and the REST API
	// (clouddriverId). Default: the host name.
	ID string
	// GRPCAddr is the agents' endpoint (kubesvc.grpc.server.address and
	// port). Default ":9091".
	GRPCAddr string
	// HTTPAddr is the REST API (server.address and port). Default ":7002".
	HTTPAddr string
	// MaxRecvMsgBytes caps one inbound gRPC message
	// (kubesvc.grpc.server.maxInboundMessageSize). Default 4 MiB; agents
	// keep their batches under half of it.
	MaxRecvMsgBytes int
	// KeepaliveMinTime is the shortest client ping interval accepted
	// (kubesvc.grpc.server.keepalive.minTimeSeconds). Default 5s.
	KeepaliveMinTime time.Duration
	// KeepaliveTime and KeepaliveTimeout: the server pings idle agents every
	// KeepaliveTime and drops them after KeepaliveTimeout without an answer.
	// Defaults 30s and 20s (kubesvc.grpc.server.security.keepAliveHeartbeatSeconds
	// and KeepAliveTimeOutSeconds).
	KeepaliveTime, KeepaliveTimeout time.Duration
	// AgentTimeout drops a session that sent nothing (not even a heartbeat)
	// for this long (kubesvc.agentTimeoutSeconds). Default 90s.
	AgentTimeout time.Duration
	// Log receives the server's logs. Default slog.Default().
	Log *slog.Logger
	// NoHealthService leaves the standard gRPC health service out
	// (kubesvc.grpc.server.healthServiceEnabled: false).
	NoHealthService bool
	// GRPCOptions are added to the gRPC server's options (interceptors).
	GRPCOptions []grpc.ServerOption
	// TLS, when set, secures the agents' endpoint
	// (kubesvc.grpc.server.security); nil serves plaintext.
	TLS *tls.Config
	// HTTPTLS, when set, serves the REST API over TLS (server.ssl); the
	// default BaseURL is then https.
	HTTPTLS *tls.Config
	// PeerTLS is the TLS of this replica's requests to other replicas'
	// REST API (https base URLs): how their certificates are verified and
	// the client certificate presented (kubesvc.peerTls). nil: Go's
	// defaults (system roots, no client certificate).
	PeerTLS *tls.Config
	// ClientSubjects, when set, authorizes each agent call by the subject
	// of the agent's verified client certificate
	// (kubesvc.grpc.auth.x509). Needs TLS. The gRPC health service is
	// left open: it tells nothing but that the server is up.
	ClientSubjects SubjectFilter

	// Proxy serves the Kubernetes API proxy (kubesvc.proxy.enabled):
	// /agents/kubernetes/accounts/{account}/proxy/... relays to the
	// account's API server through its agent, which decides what it
	// relays. Anyone who can reach the REST API can use it: enable it
	// with the REST API behind client certificates (server.ssl) or a
	// gateway that authenticates.
	Proxy bool
	// ProxySubjects, when set, admits to the proxy only REST clients whose
	// verified certificate's subject it allows (kubesvc.proxy.x509.filters;
	// needs HTTPTLS asking for client certificates). A request forwarded
	// by another replica is judged by that replica's certificate, unless
	// it carries PeerSecret: then the forwarding replica checked it.
	ProxySubjects SubjectFilter
	// ProxyStall is how long a proxy client may leave a part of an answer
	// unread before its request is ended (ten times that for an upgraded
	// connection: an interactive exec piped into a pager). Default 1m.
	ProxyStall time.Duration

	// BaseURL is where other replicas reach this one's REST API, for
	// forwarding (kubesvc.cluster-kubernetes / static peers). Default
	// http://<host name>:<HTTP port>.
	BaseURL string
	// Peers lists the replicas of the cluster (kubesvc.cluster): nil for
	// a single replica (local).
	Peers Peers
	// PeerSecret, when set, is required (header X-Kubesvc-Peer-Secret) by
	// the endpoints replicas call on each other to reach an agent, and sent
	// by this replica's forwards (kubesvc.peerSecretFile).
	PeerSecret string
	// HeartbeatPeriod is how often this replica records itself alive and
	// reaps silent peers (kubesvc.heartbeat.period). Default 60s.
	HeartbeatPeriod time.Duration
	// HeartbeatInitialDelay postpones the first heartbeat
	// (kubesvc.heartbeat.initialDelay).
	HeartbeatInitialDelay time.Duration
	// NoHeartbeat (kubesvc.heartbeat.enabled: false) relies on the agents'
	// connections alone: the replica records itself once, never reaps a
	// peer and never fences itself; a dead replica's accounts move when
	// its agents reconnect elsewhere (which they do when it dies).
	NoHeartbeat bool
	// ReplicaTimeout: a replica that has not heartbeat for this long is
	// dead; its agent sessions and their accounts are taken over. A
	// replica that cannot heartbeat for this long drops its own agents
	// (they reconnect to a survivor). Default 3 x HeartbeatPeriod.
	ReplicaTimeout time.Duration
	// UnreadyAfter: a replica whose database round trips have all failed
	// for this long is not ready (GET /health/readiness answers 503, the
	// agent service's gRPC health NOT_SERVING) until one succeeds.
	// Default 10s.
	UnreadyAfter time.Duration
	// AssignInterval is how often the replica looks for accounts without
	// a caching agent and claims them for its agents. Default 1s.
	AssignInterval time.Duration
	// ForwardDialTimeout bounds connecting to another replica when
	// forwarding; a dead replica fails fast. Default 2s.
	ForwardDialTimeout time.Duration
	// SchemaCheckPeriod is how often the replica checks that the shared
	// database's schema is still one it may run against (a newer release
	// may migrate it during a rolling upgrade). Default 15s.
	SchemaCheckPeriod time.Duration
	// AccountCleanup: an account no connected agent serves for this long
	// leaves the cache (kubesvc.cache.accountCleanupFrequencySeconds).
	// Default 600s; negative: never.
	AccountCleanup time.Duration
}

// SubjectFilter authorizes a client certificate by its subject line
// (certs.Subject).
type SubjectFilter interface {
	Allows(subject string) bool
}

func (c *Config) setDefaults() {
	if c.ID == "" {
		c.ID, _ = os.Hostname()
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = ":9091"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":7002"
	}
	if c.MaxRecvMsgBytes == 0 {
		c.MaxRecvMsgBytes = 4 << 20
	}
	// A fixed flow-control window that holds one whole batch (agents keep
	// them under half MaxRecvMsgBytes). gRPC's dynamic window would probe
	// with a ping round trip after nearly every batch, which at a low
	// rate of changes doubles the packets and wake-ups behind each one.
	window := int32(min(max(64<<10, c.MaxRecvMsgBytes/2), 1<<30))
	c.GRPCOptions = append([]grpc.ServerOption{grpc.StaticStreamWindowSize(window), grpc.StaticConnWindowSize(window)}, c.GRPCOptions...)
	if c.KeepaliveMinTime == 0 {
		c.KeepaliveMinTime = 5 * time.Second
	}
	if c.KeepaliveTime == 0 {
		c.KeepaliveTime = 30 * time.Second
	}
	if c.KeepaliveTimeout == 0 {
		c.KeepaliveTimeout = 20 * time.Second
	}
	if c.AgentTimeout == 0 {
		c.AgentTimeout = 90 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.HeartbeatPeriod == 0 {
		c.HeartbeatPeriod = 60 * time.Second
	}
	if c.ReplicaTimeout == 0 {
		c.ReplicaTimeout = 3 * c.HeartbeatPeriod
	}
	if c.AssignInterval == 0 {
		c.AssignInterval = time.Second
	}
	if c.UnreadyAfter == 0 {
		c.UnreadyAfter = 10 * time.Second
	}
	if c.SchemaCheckPeriod == 0 {
		c.SchemaCheckPeriod = 15 * time.Second
	}
	if c.ForwardDialTimeout == 0 {
		c.ForwardDialTimeout = 2 * time.Second
	}
	if c.AccountCleanup == 0 {
		c.AccountCleanup = 600 * time.Second
	}
	if c.ProxyStall == 0 {
		c.ProxyStall = time.Minute
	}
	if c.BaseURL == "" {
		// The REST address's own host when it names one (a replica bound
		// to 127.0.0.1 is not reachable at its host name), else the host
		// name.
		host, port := "", "7002"
		if h, p, err := net.SplitHostPort(c.HTTPAddr); err == nil {
			if p != "" && p != "0" {
				port = p
			}
			if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
				host = h
			}
		}
		if host == "" {
			host, _ = os.Hostname()
		}
		c.BaseURL = c.httpScheme() + "://" + net.JoinHostPort(host, port)
	}
}

// httpScheme is the REST API's URL scheme.
func (c *Config) httpScheme() string {
	if c.HTTPTLS != nil {
		return "https"
	}
	return "http"
}

// Validate applies defaults and checks the configuration.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.MaxRecvMsgBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("kubesvc.grpc.server.maxInboundMessageSize: %d is below the minimum 65536", c.MaxRecvMsgBytes))
	}
	for key, d := range map[string]time.Duration{
		"kubesvc.grpc.server.keepalive.minTimeSeconds":           c.KeepaliveMinTime,
		"kubesvc.grpc.server.security.keepAliveHeartbeatSeconds": c.KeepaliveTime,
		"kubesvc.grpc.server.security.KeepAliveTimeOutSeconds":   c.KeepaliveTimeout,
		"kubesvc.agentTimeoutSeconds":                            c.AgentTimeout,
		"kubesvc.heartbeat.period":                               c.HeartbeatPeriod,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", key))
		}
	}
	if c.ReplicaTimeout <= c.HeartbeatPeriod {
		errs = append(errs, fmt.Errorf("kubesvc.heartbeat: the replica timeout (%s) must exceed the heartbeat period (%s)", c.ReplicaTimeout, c.HeartbeatPeriod))
	}
	if c.ProxySubjects != nil && (c.HTTPTLS == nil || c.HTTPTLS.ClientAuth == tls.NoClientCert) {
		errs = append(errs, errors.New("kubesvc.proxy.x509.filters: subject filtering needs the REST API over TLS asking for client certificates (server.ssl.client-auth want or need)"))
	}
	if c.ClientSubjects != nil && (c.TLS == nil || c.TLS.ClientAuth == tls.NoClientCert) {
		errs = append(errs, errors.New("kubesvc.grpc.auth.x509: subject filtering needs TLS with client certificates (kubesvc.grpc.server.security.clientAuth OPTIONAL or REQUIRE)"))
	}
	return errors.Join(errs...)
}
