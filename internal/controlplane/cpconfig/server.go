package cpconfig

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/kubesvc/kubesvc/internal/certs"
	"github.com/kubesvc/kubesvc/internal/controlplane"
)

// ProxyFilter returns the filter of kubesvc.proxy.x509.filters, nil when
// none is set.
func (c *Config) ProxyFilter() (controlplane.SubjectFilter, error) {
	if len(c.ProxySubjects) == 0 {
		return nil, nil
	}
	f, err := certs.NewFilter(c.ProxySubjects)
	if err != nil {
		return nil, fmt.Errorf("kubesvc.proxy.x509.filters: %w", err)
	}
	return f, nil
}

// ServerConfig maps c onto the runtime configuration of
// controlplane.New. log becomes its logger (nil: slog.Default()). Settings
// the server does not take (TLS, clustering, dynamic accounts, SQL, ...)
// are left to their own wiring.
func (c *Config) ServerConfig(log *slog.Logger) controlplane.Config {
	return controlplane.Config{
		ID:                    c.ID,
		GRPCAddr:              net.JoinHostPort(c.GRPC.Address, strconv.Itoa(c.GRPC.Port)),
		HTTPAddr:              net.JoinHostPort(c.Server.Address, strconv.Itoa(c.Server.Port)),
		MaxRecvMsgBytes:       c.GRPC.MaxInboundMessageSize,
		NoHealthService:       !c.GRPC.HealthServiceEnabled,
		KeepaliveMinTime:      c.GRPC.Keepalive.MinTime,
		KeepaliveTime:         c.GRPC.Keepalive.Time,
		KeepaliveTimeout:      c.GRPC.Keepalive.Timeout,
		AgentTimeout:          c.AgentTimeout,
		Log:                   log,
		BaseURL:               c.Cluster.BaseURL,
		PeerSecret:            c.Cluster.PeerSecret,
		HeartbeatPeriod:       c.Heartbeat.Period,
		HeartbeatInitialDelay: c.Heartbeat.InitialDelay,
		NoHeartbeat:           !c.Heartbeat.Enabled,
		AccountCleanup:        c.Cache.AccountCleanupFrequency,
		Proxy:                 c.Proxy,
	}
}
