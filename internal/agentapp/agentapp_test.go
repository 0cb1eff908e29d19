package agentapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/config"
	"github.com/kubesvc/kubesvc/internal/testlog"
	"github.com/kubesvc/kubesvc/internal/testnet"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	var f config.File
	if err := config.Parse(&f, "agent.yml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
	c, err := config.New(&f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A reload warns that a restart is needed while settings other than the
// accounts differ from those the agent started with, and only then: an
// edit reverted needs no restart, an account edit after an unapplied
// change still does. The accounts are applied every time.
func TestReloaderRestartWarning(t *testing.T) {
	const base = "clouddriver: {grpc: 'cp:9091'}\n"
	accounts := func(name string) string {
		return "kubernetes:\n  accounts:\n    - {name: " + name + ", serviceAccount: true}\n"
	}
	var logs bytes.Buffer
	var applied [][]agent.Account
	r := &reloader{
		log:     slog.New(slog.NewTextHandler(&logs, nil)),
		started: parse(t, base+accounts("a")),
		apply:   func(a []agent.Account) error { applied = append(applied, a); return nil },
	}
	prev := r.started
	for i, step := range []struct {
		yaml string
		warn bool
	}{
		{base + accounts("b"), false},                              // accounts only
		{base + accounts("b") + "logging: {level: debug}\n", true}, // a setting changed
		{base + accounts("c") + "logging: {level: debug}\n", true}, // still differs from the start
		{base + accounts("c"), false},                              // reverted
	} {
		logs.Reset()
		next := parse(t, step.yaml)
		r.changed(prev, next)
		prev = next
		if got := strings.Contains(logs.String(), "take effect when the agent restarts"); got != step.warn {
			t.Errorf("step %d: restart warning %v, want %v; logs:\n%s", i, got, step.warn, logs.String())
		}
		if step.warn && !strings.Contains(logs.String(), "sections=[logging]") {
			t.Errorf("step %d: the warning does not name the section that changed: %s", i, logs.String())
		}
		if len(applied) != i+1 {
			t.Fatalf("step %d: accounts applied %d times", i, len(applied))
		}
	}
	if got := applied[3]; len(got) != 1 || got[0].Name != "c" {
		t.Errorf("last accounts applied: %+v", got)
	}
}

func TestDialHost(t *testing.T) {
	for target, want := range map[string]string{
		"cp.example.com:9091":          "cp.example.com",
		"dns:///cp.example.com:9091":   "cp.example.com",
		"dns://8.8.8.8:53/cp.local:91": "cp.local",
		"[::1]:9091":                   "::1",
		"dns:///[::1]:9091":            "::1",
		"passthrough:///10.0.0.1:9091": "10.0.0.1",
		"cp.example.com":               "cp.example.com",
		"unix:///var/run/cp.sock":      "",
		"unix-abstract:cp":             "",
		":9091":                        "",
		"dns:///cp:9091/":              "",
	} {
		if got := dialHost(target); got != want {
			t.Errorf("dialHost(%q) = %q, want %q", target, got, want)
		}
	}
}

// The start line names the id and zone the agent derived (from the pod),
// and a stop from outside (a signal) is logged with its reason.
func TestStartAndStopLogged(t *testing.T) {
	t.Setenv("POD_NAME", "armory-agent-7c9f8d6b5-x2x7k")
	t.Setenv("POD_NAMESPACE", "spinnaker")
	path, _ := writeAgentConfig(t, "")
	var logs testlog.Buffer
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []config.Source{{Path: path}}, slog.New(slog.NewTextHandler(&logs, nil))) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "agent starting") {
		select {
		case err := <-done:
			t.Fatalf("Run: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no start line:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel(errors.New("terminated signal received"))
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	l := logs.String()
	if !strings.Contains(l, `msg="agent starting" id=armory-agent-7c9f8d6b5-x2x7k zone=armory-agent_spinnaker`) {
		t.Errorf("start line without the derived id and zone:\n%s", l)
	}
	if !strings.Contains(l, `msg="agent stopping" reason="terminated signal received"`) {
		t.Errorf("no stop line with its reason:\n%s", l)
	}
}

// A failed reload of the configuration files is reported on /health
// (configError, with since when) and in the metrics
// (kubesvc_agent_config_reload_errors_total, kubesvc_agent_config_valid),
// not only in the log, and cleared once the files read cleanly again.
func TestConfigReloadErrorReported(t *testing.T) {
	path, port := writeAgentConfig(t, "agent: {id: a}\n")
	good := fmt.Sprintf("agent: {id: a}\nclouddriver: {grpc: \"127.0.0.1:1\", insecure: true}\nserver: {host: 127.0.0.1, port: %d}\n", port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []config.Source{{Path: path}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(p string) string {
		resp, err := http.Get(base + p)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: /health %s\nmetrics:\n%s", what, get("/health"), grepLines(get("/metrics"), "kubesvc_agent_config"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("health endpoint up, configuration valid", func() bool {
		return strings.Contains(get("/health"), `"status":"UP"`) && strings.Contains(get("/metrics"), "kubesvc_agent_config_valid 1")
	})
	if h := get("/health"); strings.Contains(h, "configError") {
		t.Errorf("configError with a valid configuration: %s", h)
	}

	if err := os.WriteFile(path, []byte(good+"kubernetes: {accounts: [{kubeconfigFile: /k}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("failed reload reported", func() bool {
		var h struct {
			ConfigError struct{ Message, Since string } `json:"configError"`
		}
		if json.Unmarshal([]byte(get("/health")), &h) != nil || !strings.Contains(h.ConfigError.Message, "kubernetes.accounts[0].name: required") {
			return false
		}
		if _, err := time.Parse(time.RFC3339, h.ConfigError.Since); err != nil {
			t.Errorf("configError.since %q: %v", h.ConfigError.Since, err)
		}
		m := get("/metrics")
		return strings.Contains(m, "kubesvc_agent_config_valid 0") && strings.Contains(m, "kubesvc_agent_config_reload_errors_total 1")
	})

	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("cleared once the file reads cleanly again", func() bool {
		return !strings.Contains(get("/health"), "configError") && strings.Contains(get("/metrics"), "kubesvc_agent_config_valid 1")
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// writeAgentConfig writes an agent configuration (extra, then a control
// plane that is not there and the health endpoint on a loopback port
// reserved for the test) and returns its path and that port.
func writeAgentConfig(t *testing.T, extra string) (path string, port int) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "agent.yml")
	_, p, _ := net.SplitHostPort(testnet.Reserve(t))
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("%sclouddriver: {grpc: \"127.0.0.1:1\", insecure: true}\nserver: {host: 127.0.0.1, port: %d}\n", extra, port)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, port
}
