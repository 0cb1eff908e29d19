package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenCredentials(t *testing.T) {
	ctx := context.Background()
	md, err := NewTokenCredentials("static-token", nil).GetRequestMetadata(ctx)
	if err != nil || md["authorization"] != "Bearer static-token" {
		t.Fatalf("static token: %v %v", md, err)
	}

	counter := filepath.Join(t.TempDir(), "runs")
	json := script(t, `echo x >> `+counter+`; printf '{"token": "from-json", "expiry": 1}'`)
	creds := NewTokenCredentials("", &TokenCommand{Command: json, JSON: true, Refresh: time.Hour})
	for range 3 {
		if md, err := creds.GetRequestMetadata(ctx); err != nil || md["authorization"] != "Bearer from-json" {
			t.Fatalf("json token: %v %v", md, err)
		}
	}
	if b, _ := os.ReadFile(counter); strings.Count(string(b), "x") != 1 {
		t.Errorf("the command ran %d times for three calls within its refresh interval, want once", strings.Count(string(b), "x"))
	}

	raw := NewTokenCredentials("", &TokenCommand{Command: script(t, "echo '  raw-token  '")})
	if md, err := raw.GetRequestMetadata(ctx); err != nil || md["authorization"] != "Bearer raw-token" {
		t.Errorf("raw token: %v %v", md, err)
	}

	for name, tc := range map[string]struct {
		cmd  TokenCommand
		want string
	}{
		"fails":           {TokenCommand{Command: script(t, "echo leaked-token; echo 'no credentials' >&2; exit 3")}, `exit status 3 (stderr: "no credentials")`},
		"prints nothing":  {TokenCommand{Command: script(t, "true")}, "printed nothing"},
		"not JSON":        {TokenCommand{Command: script(t, "echo leaked-token"), JSON: true}, "output is not a JSON object"},
		"JSON, no token":  {TokenCommand{Command: script(t, `echo '{"access": "leaked-token"}'`), JSON: true}, "has no token attribute"},
		"missing command": {TokenCommand{Command: filepath.Join(t.TempDir(), "nope")}, "no such file"},
	} {
		_, err := NewTokenCredentials("", &tc.cmd).GetRequestMetadata(ctx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "leaked-token") {
			t.Errorf("%s: the error quotes the command's output: %v", name, err)
		}
	}
}

// A command whose child keeps its output open is given up at the
// deadline (plus a short grace), not when the child exits.
func TestTokenCommandDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := NewTokenCredentials("", &TokenCommand{Command: script(t, "sleep 60 & sleep 60")}).GetRequestMetadata(ctx)
	if err == nil {
		t.Fatal("no error from a command that never finished")
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("gave up after %s: the command's child held the call", elapsed)
	}
}
