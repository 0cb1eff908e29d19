package store

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// A server that closes the connection before its handshake: the driver's
// own log line goes through the store's logger (JSON here), not to stderr
// in its own format, and the error says more than "invalid connection".
// No MySQL server is needed.
func TestMySQLDriverLogsThroughTheLogger(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = OpenMySQL(ctx, "u:p@tcp("+lis.Addr().String()+")/db", log)
	if err == nil {
		t.Fatal("opened")
	}
	if msg := err.Error(); !strings.Contains(msg, "invalid connection") || !strings.Contains(msg, "EOF") || !strings.Contains(msg, "is it a MySQL") {
		t.Errorf("error %q: want invalid connection with the cause the driver logged (EOF) and a hint", msg)
	}
	var rec struct {
		Level, Msg, Detail string
	}
	line, _, _ := strings.Cut(buf.String(), "\n")
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "store: mysql driver" || !strings.Contains(rec.Detail, "EOF") || rec.Level != "WARN" {
		t.Errorf("the driver's line is not in the JSON log: %q", buf.String())
	}
}

// A DSN without tcp(...) names the form expected.
func TestMySQLDSNWithoutTCPGetsAHint(t *testing.T) {
	_, err := OpenMySQL(context.Background(), "user:pw@127.0.0.1:3306/db", nil)
	if err == nil || !strings.Contains(err.Error(), "user:password@tcp(host:3306)/db") || strings.Contains(err.Error(), "pw") {
		t.Errorf("error %v: want a hint naming user:password@tcp(host:3306)/db, without the password", err)
	}
}
