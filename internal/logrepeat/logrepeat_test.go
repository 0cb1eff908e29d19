package logrepeat

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// An outage logs its error once, then once every Every with a count; a
// different error shows at once; the recovery is logged once with how long
// it lasted.
func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelError, "cluster: assign accounts")
	l.now = func() time.Time { return now }
	l.OK() // no failure: nothing to say
	down := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	for range 45 { // one a second for 45 s
		l.Failed(down)
		now = now.Add(time.Second)
	}
	l.Failed(errors.New("store: schema broken"))
	l.Failed(errors.New("store: schema broken"))
	l.OK()
	l.OK()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("logged %d lines, want 4 (first, a summary after 30s, the new error, the recovery):\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		`level=ERROR msg="cluster: assign accounts" err="dial tcp 127.0.0.1:5432: connect: connection refused"`,
		`repeatedSinceLastLogged=29 failingFor=30s`,
		`err="store: schema broken"`,
		`level=INFO msg="cluster: assign accounts: database reachable again after 45s" failures=47`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: %s\nwant it to contain %s", i, lines[i], want)
		}
	}
	if failing, _ := l.Failing(); failing {
		t.Error("still failing after OK")
	}
}
