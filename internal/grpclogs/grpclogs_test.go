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
	l.Info("[core] grpc: Server.Serve failed to create ServerTransport: ", "connection error: tls: first record does not look like a TLS handshake")
	out := buf.String()
	if strings.Contains(out, "chatty") || !strings.Contains(out, `level=WARN msg="handshake failed from 10.0.0.1:5"`) || !strings.Contains(out, "level=ERROR msg=broken") ||
		!strings.Contains(out, "level=WARN msg=\"[core] grpc: Server.Serve failed to create ServerTransport: connection error") {
		t.Errorf("log:\n%s", out)
	}
}
