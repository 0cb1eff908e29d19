package ops

import (
	"context"
	"slices"
	"sync"
)

// VersionLocks serialises the deploys of each versioned artifact: its
// versions are numbered by listing those that exist and adding one, so
// two deploys of it at once would both pick the same version and the
// second would overwrite the first. Executors share one (Options.Versions)
// so that it holds across an account's executors (rebuilt when its
// settings change) on one agent.
type VersionLocks struct {
	mu    sync.Mutex // guards locks
	locks map[string]*keyLock
}

type keyLock struct {
	held chan struct{} // capacity 1: full while held
	refs int           // holders and waiters; the entry goes at zero
}

// lock takes the locks of keys in sorted order (so that two callers
// sharing several keys cannot deadlock) and returns their release, or
// ctx's error, holding none, if ctx ends first.
func (k *VersionLocks) lock(ctx context.Context, keys []string) (unlock func(), _ error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	var held []string
	release := func() {
		for _, key := range held {
			k.mu.Lock()
			l := k.locks[key]
			<-l.held
			if l.refs--; l.refs == 0 {
				delete(k.locks, key)
			}
			k.mu.Unlock()
		}
	}
	for _, key := range keys {
		k.mu.Lock()
		if k.locks == nil {
			k.locks = map[string]*keyLock{}
		}
		l := k.locks[key]
		if l == nil {
			l = &keyLock{held: make(chan struct{}, 1)}
			k.locks[key] = l
		}
		l.refs++
		k.mu.Unlock()
		select {
		case l.held <- struct{}{}:
			held = append(held, key)
		case <-ctx.Done():
			k.mu.Lock()
			if l.refs--; l.refs == 0 {
				delete(k.locks, key)
			}
			k.mu.Unlock()
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}
