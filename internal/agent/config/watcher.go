package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a Watcher waits after the last file event
// before reading the files, and again before confirming what it read.
const DefaultDebounce = 200 * time.Millisecond

// WatcherOptions configures a Watcher.
type WatcherOptions struct {
	// Sources are the files to read and watch, as for Load.
	Sources []Source
	// Override, if set, is applied to every File read, before New (for
	// example to re-apply command-line flags).
	Override func(*File)
	// OnChange is called by Run, one call at a time, when a reload yields a
	// valid Config whose settings differ from the one in force. prev is the
	// Config that was in force. It should return promptly: reloads wait for it.
	OnChange func(prev, next *Config)
	// OnError, if set, is called by Run when a reload fails; the previous
	// Config stays in force. Failures are logged either way.
	OnError func(error)
	// OnRecover, if set, is called by Run when the files read cleanly
	// again after a failed reload and nothing changed (a change calls
	// OnChange instead).
	OnRecover func()
	// Logger receives reload failures and watch problems; nil discards them.
	Logger *slog.Logger
	// Debounce is the quiet time after the last file event before a reload;
	// 0 means DefaultDebounce.
	Debounce time.Duration
}

// Watcher reloads the configuration when its files change. Create it with
// NewWatcher, which loads the initial Config, then call Run.
type Watcher struct {
	opts     WatcherOptions
	logger   *slog.Logger
	debounce time.Duration
	running  atomic.Bool

	mu      sync.Mutex
	current *Config

	// relevant holds the paths whose events can change the configuration
	// (set by syncWatches, used by Run only).
	relevant map[string]bool
	// failing: the last reload failed (used by Run only), so that the
	// files reading cleanly again is said even when nothing changed.
	failing bool
}

// NewWatcher loads the initial Config from opts.Sources and returns a
// Watcher for them. It fails if the initial configuration is invalid.
func NewWatcher(opts WatcherOptions) (*Watcher, error) {
	if len(opts.Sources) == 0 {
		return nil, errors.New("config watcher: no sources")
	}
	w := &Watcher{opts: opts, logger: opts.Logger, debounce: opts.Debounce}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	r := w.read()
	if r.err != nil {
		return nil, r.err
	}
	w.current = r.cfg
	return w, nil
}

// Current returns the Config in force.
func (w *Watcher) Current() *Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Run watches the parent directories of the sources (and of their symlink
// targets) until ctx is done. After a burst of changes has been quiet for
// the debounce time it reads the files, and when a second read one debounce
// later agrees it applies the result: a new Config goes to OnChange, an
// error to OnError and the log. So a change takes about two debounce times
// to arrive, and a half-written file is never applied. Run returns nil when
// ctx is done and an error only if watching cannot start. Everything it
// starts has stopped when it returns.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("config watcher: already running")
	}
	defer w.running.Store(false)

	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config watcher: %w", err)
	}
	defer fw.Close() // waits for fsnotify's reader goroutine

	// Watch first, then read, so that a change made since NewWatcher loaded
	// is not missed.
	w.syncWatches(fw)
	timer := time.NewTimer(w.debounce)
	defer timer.Stop()
	var candidate *result // a read that differs from the Config in force, awaiting confirmation
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("config watcher: event channel closed")
			}
			if ev.Op == fsnotify.Chmod || !w.isRelevant(ev.Name) {
				continue
			}
			w.logger.Debug("configuration directory changed", "event", ev)
			timer.Reset(w.debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("config watcher: error channel closed")
			}
			// Typically an event queue overflow: events were lost, so reload.
			w.logger.Warn("configuration watch error; reloading", "err", err)
			timer.Reset(w.debounce)
		case <-timer.C:
			// A change is applied only when two reads a debounce apart agree,
			// so that a file caught half-written (truncated, or a valid YAML
			// prefix of the new content) is never applied or reported.
			r := w.read()
			switch {
			case r.err == nil && sameConfig(r.cfg, w.Current()):
				candidate = nil
				if w.failing {
					w.failing = false
					w.logger.Info("configuration reads cleanly again; it is the one in force, nothing changed")
					if w.opts.OnRecover != nil {
						w.opts.OnRecover()
					}
				}
			case candidate != nil && candidate.same(r):
				candidate = nil
				w.apply(r)
			default:
				candidate = &r
				timer.Reset(w.debounce)
			}
			w.syncWatches(fw)
		}
	}
}

// result is the outcome of reading the configuration files.
type result struct {
	cfg *Config
	err error
}

func (r result) same(o result) bool {
	if r.err != nil || o.err != nil {
		return r.err != nil && o.err != nil && r.err.Error() == o.err.Error()
	}
	return sameConfig(r.cfg, o.cfg)
}

func (w *Watcher) read() result {
	f, err := Read(w.opts.Sources...)
	if err != nil {
		return result{err: err}
	}
	if w.opts.Override != nil {
		w.opts.Override(f)
	}
	cfg, err := New(f)
	return result{cfg: cfg, err: err}
}

// apply reports a failed read or makes a new Config current and hands it to OnChange.
func (w *Watcher) apply(r result) {
	w.failing = r.err != nil
	if r.err != nil {
		w.logger.Error("configuration reload failed; keeping the previous configuration", "err", r.err)
		if w.opts.OnError != nil {
			w.opts.OnError(r.err)
		}
		return
	}
	w.mu.Lock()
	prev := w.current
	w.current = r.cfg
	w.mu.Unlock()

	d := DiffAccounts(prev, r.cfg)
	w.logger.Info("configuration reloaded", "sources", r.cfg.Sources,
		"accountsAdded", len(d.Added), "accountsRemoved", len(d.Removed), "accountsChanged", len(d.Changed))
	if w.opts.OnChange != nil {
		w.opts.OnChange(prev, r.cfg)
	}
}

// isRelevant reports whether an event on path may change the
// configuration: an event on a source or its resolved symlink target, on a
// watched directory itself, or on a Kubernetes volume's "..data" swap
// (names starting with ".."). Other files sharing the directory (a
// database, logs) are ignored, so that their writes cost nothing here.
func (w *Watcher) isRelevant(path string) bool {
	return w.relevant[filepath.Clean(path)] || strings.HasPrefix(filepath.Base(path), "..")
}

// syncWatches watches the directory of every source and of its resolved
// symlink target, and stops watching directories no longer needed. Watching
// directories rather than files catches files that are replaced (rename,
// ConfigMap ..data swap) or created later.
func (w *Watcher) syncWatches(fw *fsnotify.Watcher) {
	want := map[string]bool{}
	relevant := map[string]bool{}
	for _, s := range w.opts.Sources {
		p, err := filepath.Abs(s.Path)
		if err != nil {
			p = s.Path
		}
		want[filepath.Dir(p)] = true
		relevant[filepath.Clean(s.Path)], relevant[p], relevant[filepath.Dir(p)] = true, true, true
		if real, err := filepath.EvalSymlinks(p); err == nil {
			want[filepath.Dir(real)] = true
			relevant[real], relevant[filepath.Dir(real)] = true, true
		}
	}
	w.relevant = relevant
	have := map[string]bool{}
	for _, d := range fw.WatchList() {
		have[d] = true
	}
	for d := range want {
		if have[d] {
			continue
		}
		if err := fw.Add(d); err != nil {
			level := slog.LevelWarn
			if errors.Is(err, fs.ErrNotExist) {
				level = slog.LevelDebug
			}
			w.logger.Log(context.Background(), level, "cannot watch configuration directory", "dir", d, "err", err)
		}
	}
	for d := range have {
		if !want[d] {
			_ = fw.Remove(d) // it may already be gone with its directory
		}
	}
}
