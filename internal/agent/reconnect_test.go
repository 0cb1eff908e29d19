package agent

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testnet"
)

// attemptLog is a slog handler that records when each failed attempt to
// get a session was logged, and its error.
type attemptLog struct {
	mu       sync.Mutex
	failures []attemptFailure
}

type attemptFailure struct {
	at        time.Time
	err, hint string
}

func (*attemptLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *attemptLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "no session with the control plane" {
		return nil
	}
	f := attemptFailure{at: time.Now()}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "err":
			f.err = a.Value.String()
		case "hint":
			f.hint = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.failures = append(l.failures, f)
	l.mu.Unlock()
	return nil
}
func (l *attemptLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *attemptLog) WithGroup(string) slog.Handler      { return l }

func (l *attemptLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failures)
}

// The agent's reconnect attempts follow its own backoff
// (clouddriver.backoff.*) and each one reaches the control plane: once it
// is up, the next attempt connects, rather than failing with the error of
// an earlier dial while gRPC's channel waits out a reconnect backoff of
// its own.
func TestReconnectAttemptsDialAfresh(t *testing.T) {
	t.Parallel()
	// A port nothing listens on, until the control plane starts on it.
	addr := testnet.Reserve(t)

	attempts := &attemptLog{}
	a, err := New(Config{Target: addr, ID: "agent", ZoneID: "z", Log: slog.New(attempts),
		Backoff: Backoff{BaseDelay: 150 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 700 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for attempts.count() < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed attempts in 20s, want 6", attempts.count())
		}
		time.Sleep(20 * time.Millisecond)
	}

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	d := serveControlPlaneDouble(t, lis, doubleOptions{autoAck: true})
	d.hello(t)
	// An attempt that started before the control plane did may fail
	// still; one that started well after it must not.
	attempts.mu.Lock()
	defer attempts.mu.Unlock()
	for _, f := range attempts.failures {
		if f.at.After(up.Add(time.Second)) { // an attempt under way as it started may be logged a little later on a busy machine
			t.Errorf("an attempt failed %s after the control plane was up: %s", f.at.Sub(up).Round(time.Millisecond), f.err)
		}
	}
}
