package ops

import (
	"slices"
	"sync"
)

// keyedMutex serialises work on the same keys: the versions of one
// artifact (kind, namespace, name) are numbered by listing those that
// exist and adding one, so two deploys of it at once would both pick the
// same version, and the second would overwrite the first.
type keyedMutex struct {
	mu    sync.Mutex // guards locks
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int // holders and waiters; the entry goes at zero
}

// lock takes the locks of keys, in sorted order (so that two callers
// sharing several keys cannot deadlock), and returns their release.
func (k *keyedMutex) lock(keys []string) (unlock func()) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	held := make([]*keyLock, 0, len(keys))
	for _, key := range keys {
		k.mu.Lock()
		if k.locks == nil {
			k.locks = map[string]*keyLock{}
		}
		l := k.locks[key]
		if l == nil {
			l = &keyLock{}
			k.locks[key] = l
		}
		l.refs++
		k.mu.Unlock()
		l.mu.Lock()
		held = append(held, l)
	}
	return func() {
		for i, l := range held {
			l.mu.Unlock()
			k.mu.Lock()
			if l.refs--; l.refs == 0 {
				delete(k.locks, keys[i])
			}
			k.mu.Unlock()
		}
	}
}
