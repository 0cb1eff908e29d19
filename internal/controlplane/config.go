package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
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
	// GRPCOptions are added to the gRPC server's options (TLS credentials,
	// interceptors).
	GRPCOptions []grpc.ServerOption
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
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", key))
		}
	}
	return errors.Join(errs...)
}
