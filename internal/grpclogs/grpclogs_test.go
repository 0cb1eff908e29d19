package grpclogs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l := &logger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Infof("chatty %d", 1)
	l.Warningf("handshake failed from %s", "10.0.0.1:5")
	l.Errorln("broken")
	l.Info("[core] grpc: Server.Serve failed to create ServerTransport: ", `connection error: desc = "ServerHandshake(\"10.0.0.1:5\") failed: tls: first record does not look like a TLS handshake"`)
	// A TCP health probe: connects and closes.
	l.Info("[core] grpc: Server.Serve failed to create ServerTransport: ", `connection error: desc = "transport: http2Server.HandleStreams failed to receive the preface from client: read tcp 10.0.0.2:9091->10.0.0.3:6: read: connection reset by peer"`)
	out := buf.String()
	if strings.Contains(out, "chatty") || strings.Contains(out, "preface") || !strings.Contains(out, `level=WARN msg="handshake failed from 10.0.0.1:5"`) || !strings.Contains(out, "level=ERROR msg=broken") ||
		!strings.Contains(out, "level=WARN msg=\"[core] grpc: Server.Serve failed to create ServerTransport: connection error") {
		t.Errorf("log:\n%s", out)
	}
}
