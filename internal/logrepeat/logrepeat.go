// Package logrepeat rate-limits the errors a retrying loop logs: while a
// dependency (the database) is down, a loop that fails every second would
// otherwise log the same line every second, on every replica, and drown
// what else is logged.
package logrepeat

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is how often a repeated error is logged again by default.
const DefaultEvery = 30 * time.Second

// maxKept bounds the distinct errors remembered during one run of
// failures; past it, the oldest is forgotten (and logged again if it
// comes back).
const maxKept = 32

// Limiter logs the failures of one loop. The first occurrence of an error
// (by its text) is logged at once, as is any different error; the same
// error again is counted, and logged at most once every Every, with how
// often it repeated and for how long the loop has been failing. When the
// loop succeeds again after failures, OK logs once, at INFO, how long it
// failed. Safe for concurrent use.
type Limiter struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	// Every is the least time between two lines of the same error.
	Every time.Duration
	// Recovered names the recovery in OK's line ("<msg>: <Recovered>
	// after 45s"); default "database reachable again".
	Recovered string
	now       func() time.Time

	mu       sync.Mutex
	since    time.Time            // first failure of this run; zero: not failing
	failures int                  // in this run
	logged   map[string]time.Time // error text -> when last logged
	repeats  map[string]int       // error text -> occurrences not logged since
}

// New returns a limiter logging msg at level on log.
func New(log *slog.Logger, level slog.Level, msg string) *Limiter {
	return &Limiter{log: log, level: level, msg: msg, Every: DefaultEvery, Recovered: "database reachable again", now: time.Now}
}

// Failed records a failure of the loop, and logs it (msg, args, then
// "err") unless the same error was logged less than Every ago.
func (l *Limiter) Failed(err error, args ...any) {
	text := err.Error()
	l.mu.Lock()
	now := l.now()
	if l.since.IsZero() {
		l.since = now
		l.logged, l.repeats = map[string]time.Time{}, map[string]int{}
	}
	l.failures++
	last, seen := l.logged[text]
	if seen && now.Sub(last) < l.Every {
		l.repeats[text]++
		l.mu.Unlock()
		return
	}
	repeated := l.repeats[text]
	if !seen && len(l.logged) >= maxKept {
		oldest := ""
		for t, at := range l.logged {
			if oldest == "" || at.Before(l.logged[oldest]) {
				oldest = t
			}
		}
		delete(l.logged, oldest)
		delete(l.repeats, oldest)
	}
	l.logged[text], l.repeats[text] = now, 0
	failingFor := now.Sub(l.since)
	l.mu.Unlock()
	args = append(args, "err", err)
	if seen {
		args = append(args, "repeatedSinceLastLogged", repeated, "failingFor", failingFor.Round(time.Second))
	}
	l.log.Log(context.Background(), l.level, l.msg, args...)
}

// OK records a success of the loop; after failures it logs, once, that
// the loop works again and how long it failed.
func (l *Limiter) OK() {
	l.mu.Lock()
	if l.since.IsZero() {
		l.mu.Unlock()
		return
	}
	failedFor, failures := l.now().Sub(l.since), l.failures
	l.since, l.failures, l.logged, l.repeats = time.Time{}, 0, nil, nil
	l.mu.Unlock()
	l.log.Info(l.msg+": "+l.Recovered+" after "+failedFor.Round(time.Second).String(), "failures", failures)
}

// Failing reports whether the last outcome was a failure, and since when
// the loop fails.
func (l *Limiter) Failing() (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.since.IsZero(), l.since
}
