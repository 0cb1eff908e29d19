package certs

import (
	"os"
	"slices"
	"sync"
	"time"
)

// stamp is what tells a file changed: its identity (a file replaced by a
// rename, as Kubernetes and cert-manager write them, is another file),
// modification time and size.
type stamp struct {
	fi   os.FileInfo // nil: the file could not be stat'ed
	mod  time.Time
	size int64
}

func (s stamp) equal(o stamp) bool {
	if s.fi == nil || o.fi == nil {
		return s.fi == nil && o.fi == nil
	}
	return os.SameFile(s.fi, o.fi) && s.mod.Equal(o.mod) && s.size == o.size
}

func sameStamps(a, b []stamp) bool { return slices.EqualFunc(a, b, stamp.equal) }

func stamps(files []string) []stamp {
	out := make([]stamp, len(files))
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		out[i] = stamp{fi: fi, mod: fi.ModTime(), size: fi.Size()}
	}
	return out
}

// reloading holds a value read from files and reads it again when one of
// them changed. Get is safe for concurrent use (handshakes).
type reloading[T any] struct {
	files []string
	load  func() (T, error)
	onErr func(error)

	mu       sync.Mutex // guards the fields below; held while checking and loading
	cur      T
	at       []stamp   // the files' stamps when cur was loaded
	failed   []stamp   // the files' stamps when a reload last failed
	failedAt time.Time // when
}

// retryFailedAfter: a failed reload of unchanged files is tried again (and
// reported again) after this long, in case the failure was transient.
const retryFailedAfter = 30 * time.Second

// newReloading loads the value once; an error here is the caller's.
func newReloading[T any](files []string, load func() (T, error), onErr func(error)) (*reloading[T], error) {
	at := stamps(files)
	v, err := load()
	if err != nil {
		return nil, err
	}
	return &reloading[T]{files: files, load: load, onErr: onErr, cur: v, at: at}, nil
}

// get returns the current value, reloading it first if a file changed
// since it was loaded. A failed reload keeps the last good value and is
// reported; it is tried again once the files change again (a rotation
// caught half done completes with another write), or after
// retryFailedAfter.
func (r *reloading[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := stamps(r.files)
	if sameStamps(now, r.at) || (r.failed != nil && sameStamps(now, r.failed) && time.Since(r.failedAt) < retryFailedAfter) {
		return r.cur
	}
	v, err := r.load()
	if err != nil {
		r.failed, r.failedAt = now, time.Now()
		if r.onErr != nil {
			r.onErr(err)
		}
		return r.cur
	}
	r.cur, r.at, r.failed = v, now, nil
	return r.cur
}
