package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kubesvc/kubesvc/internal/testlog"
)

// waitFor bounds every wait for a watcher event; generous because it is
// a deadline, not a speed assertion.
const waitFor = 10 * time.Second

type change struct{ prev, next *Config }

type harness struct {
	w       *Watcher
	changes chan change
	errs    chan error
}

// startWatcher creates a Watcher for sources and runs it until the test ends.
func startWatcher(t *testing.T, opts WatcherOptions) *harness {
	t.Helper()
	h := &harness{changes: make(chan change, 100), errs: make(chan error, 100)}
	opts.OnChange = func(prev, next *Config) { h.changes <- change{prev, next} }
	opts.OnError = func(err error) { h.errs <- err }
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := NewWatcher(opts)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	h.w = w
	h.run(t)
	return h
}

func (h *harness) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return after cancel")
		}
	})
}

// next waits for the next change.
func (h *harness) next(t *testing.T) change {
	t.Helper()
	select {
	case c := <-h.changes:
		return c
	case err := <-h.errs:
		t.Fatalf("reload failed: %v", err)
	case <-time.After(waitFor):
		t.Fatal("no configuration change delivered")
	}
	return change{}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func accountsYAML(accounts ...string) string {
	var b strings.Builder
	b.WriteString("kubernetes:\n  accounts:\n")
	for _, a := range accounts {
		fmt.Fprintf(&b, "    - %s\n", a)
	}
	return b.String()
}

// replace writes content to a temporary file next to path and renames it
// over path, as editors and atomic writers do.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func expectDiff(t *testing.T, c change, added, removed, changed []string) AccountDiff {
	t.Helper()
	d := DiffAccounts(c.prev, c.next)
	if !equalStrings(names(d.Added), added) || !equalStrings(names(d.Removed), removed) || !equalStrings(changedNames(d.Changed), changed) {
		t.Fatalf("diff: added %v removed %v changed %v; want %v %v %v",
			names(d.Added), names(d.Removed), changedNames(d.Changed), added, removed, changed)
	}
	return d
}

func TestWatcherAddRemoveChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "armory-agent.yml", accountsYAML("{name: a, serviceAccount: true}", "{name: b, kubeconfigFile: /b}"))
	h := startWatcher(t, WatcherOptions{Sources: []Source{{Path: path}}})
	initial := h.w.Current()
	if len(initial.Kubernetes.Accounts) != 2 {
		t.Fatalf("initial accounts %+v", initial.Kubernetes.Accounts)
	}

	// In-place rewrite adds an account.
	writeFile(t, dir, "armory-agent.yml", accountsYAML("{name: a, serviceAccount: true}", "{name: b, kubeconfigFile: /b}", "{name: c, kubeconfigFile: /c}"))
	c := h.next(t)
	if c.prev != initial {
		t.Error("prev is not the initial config")
	}
	expectDiff(t, c, []string{"c"}, nil, nil)
	if h.w.Current() != c.next {
		t.Error("Current() is not the delivered config")
	}

	// Rename-replace removes one.
	replace(t, path, accountsYAML("{name: a, serviceAccount: true}", "{name: c, kubeconfigFile: /c}"))
	expectDiff(t, h.next(t), nil, []string{"b"}, nil)

	// Rename-replace changes one.
	replace(t, path, accountsYAML("{name: a, serviceAccount: true, namespaces: [team]}", "{name: c, kubeconfigFile: /c}"))
	d := expectDiff(t, h.next(t), nil, nil, []string{"a"})
	if got := d.Changed[0].New.Namespaces; !equalStrings(got, []string{"team"}) {
		t.Errorf("changed account namespaces = %v", got)
	}
}

// TestWatcherConfigMapSwap reproduces the kubelet's ConfigMap volume
// update: the file is a symlink through ..data to a timestamped directory,
// and an update atomically renames a new ..data symlink into place.
func TestWatcherConfigMapSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	version := 0
	publish := func(content string) {
		t.Helper()
		version++
		ts := fmt.Sprintf("..2025_01_01_00_00_0%d.000", version)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, ts), "armory-agent.yml", content)
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if old != "" {
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(accountsYAML("{name: a, serviceAccount: true}"))
	path := filepath.Join(dir, "armory-agent.yml")
	if err := os.Symlink(filepath.Join("..data", "armory-agent.yml"), path); err != nil {
		t.Fatal(err)
	}
	h := startWatcher(t, WatcherOptions{Sources: []Source{{Path: path}}})

	publish(accountsYAML("{name: a, serviceAccount: true}", "{name: b, kubeconfigFile: /b}"))
	expectDiff(t, h.next(t), []string{"b"}, nil, nil)

	// The watch survives the removal of the directory the previous version lived in.
	publish(accountsYAML("{name: b, kubeconfigFile: /b2}"))
	expectDiff(t, h.next(t), nil, []string{"a"}, []string{"b"})
}

func TestWatcherInvalidEditKeepsConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "agent.yaml", accountsYAML("{name: a, serviceAccount: true}"))
	h := startWatcher(t, WatcherOptions{Sources: []Source{{Path: path}}})
	initial := h.w.Current()

	replace(t, path, accountsYAML("{name: a, serviceAccount: true}", "{name: b, serviceAccount: true, kindz: [pod]}"))
	select {
	case err := <-h.errs:
		want := "config " + path + `: unknown key "kubernetes.accounts[1].kindz" (line 4)`
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %s", err, want)
		}
	case c := <-h.changes:
		t.Fatalf("invalid file delivered a config: %+v", c.next)
	case <-time.After(waitFor):
		t.Fatal("invalid file not reported")
	}
	if h.w.Current() != initial {
		t.Error("Current() changed after an invalid edit")
	}

	// A validation error is reported the same way.
	replace(t, path, accountsYAML("{name: a, serviceAccount: true}", "{name: a, serviceAccount: true}"))
	select {
	case err := <-h.errs:
		if !strings.Contains(err.Error(), `kubernetes.accounts[1].name: "a" is already used`) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("invalid file not reported")
	}

	// The next valid edit is compared with the config still in force.
	replace(t, path, accountsYAML("{name: a, serviceAccount: true}", "{name: b, serviceAccount: true}"))
	c := h.next(t)
	if c.prev != initial {
		t.Error("prev is not the config kept in force")
	}
	expectDiff(t, c, []string{"b"}, nil, nil)
}

func TestWatcherOptionalFileAndOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := writeFile(t, dir, "armory-agent.yml", "clouddriver: {grpc: file:1}\n"+accountsYAML("{name: a, serviceAccount: true}"))
	local := filepath.Join(dir, "armory-agent-local.yml")
	flag := "flag:2"
	h := startWatcher(t, WatcherOptions{
		Sources:  []Source{{Path: base}, {Path: local, Optional: true}},
		Override: func(f *File) { f.Clouddriver.GRPC = &flag },
	})
	if got := h.w.Current().Clouddriver.Address; got != flag {
		t.Fatalf("initial address %q", got)
	}

	// The optional override file appears and replaces the account list.
	writeFile(t, dir, "armory-agent-local.yml", accountsYAML("{name: local, kubeconfigFile: /l}"))
	c := h.next(t)
	expectDiff(t, c, []string{"local"}, []string{"a"}, nil)
	if c.next.Clouddriver.Address != flag || len(c.next.Sources) != 2 {
		t.Errorf("next = %+v", c.next)
	}

	// It disappears again: back to the base accounts.
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	expectDiff(t, h.next(t), []string{"a"}, []string{"local"}, nil)
}

func TestWatcherChangeBeforeRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "agent.yaml", accountsYAML("{name: a, serviceAccount: true}"))
	h := &harness{changes: make(chan change, 10), errs: make(chan error, 10)}
	w, err := NewWatcher(WatcherOptions{
		Sources:  []Source{{Path: path}},
		OnChange: func(prev, next *Config) { h.changes <- change{prev, next} },
		OnError:  func(err error) { h.errs <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	// Changed between NewWatcher and Run: Run's first reload delivers it.
	writeFile(t, dir, "agent.yaml", accountsYAML("{name: b, serviceAccount: true}"))
	h.run(t)
	expectDiff(t, h.next(t), []string{"b"}, []string{"a"}, nil)

	// Run is running (it has just delivered); a second Run is refused.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := w.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v", err)
	}
}

func TestNewWatcherErrors(t *testing.T) {
	if _, err := NewWatcher(WatcherOptions{}); err == nil {
		t.Error("no sources accepted")
	}
	path := writeFile(t, t.TempDir(), "agent.yaml", "bogus: true\n")
	if _, err := NewWatcher(WatcherOptions{Sources: []Source{{Path: path}}}); err == nil || !strings.Contains(err.Error(), `unknown key "bogus"`) {
		t.Errorf("invalid initial config: %v", err)
	}
}

// TestWatcherRelevantEvents: writes to other files of the configuration's
// directory (a database next to it, say) do not wake the reload logic.
func TestWatcherRelevantEvents(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "agent.yaml", accountsYAML("{name: a, serviceAccount: true}"))
	w, err := NewWatcher(WatcherOptions{Sources: []Source{{Path: path}}})
	if err != nil {
		t.Fatal(err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	w.syncWatches(fw)
	for name, want := range map[string]bool{
		path: true, dir: true, filepath.Join(dir, "..data"): true, filepath.Join(dir, "..2025_01_01"): true,
		filepath.Join(dir, "cache.db-wal"): false, filepath.Join(dir, "agent.yaml.swp"): false,
	} {
		if got := w.isRelevant(name); got != want {
			t.Errorf("isRelevant(%s) = %v, want %v", name, got, want)
		}
	}
}

// A broken edit reverted to the configuration in force is said: nothing
// changes, but the operator sees the fix was read.
func TestWatcherSaysWhenABrokenEditIsReverted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := accountsYAML("{name: a, serviceAccount: true}")
	path := writeFile(t, dir, "agent.yaml", good)
	logs := &testlog.Buffer{}
	h := startWatcher(t, WatcherOptions{Sources: []Source{{Path: path}}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	replace(t, path, accountsYAML("{name: a, serviceAccount: true, kindz: [pod]}"))
	select {
	case <-h.errs:
	case <-time.After(waitFor):
		t.Fatal("invalid file not reported")
	}
	replace(t, path, good)
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(logs.String(), "configuration reads cleanly again") {
		if time.Now().After(deadline) {
			t.Fatalf("the revert was not logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Count(logs.String(), "configuration reload failed") != 1 {
		t.Errorf("the failure was logged %d times:\n%s", strings.Count(logs.String(), "configuration reload failed"), logs.String())
	}
}
