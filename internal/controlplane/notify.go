package controlplane

import (
	"strconv"
	"sync"
)

// notifier wakes readers waiting for the cache to change. Every persisted
// batch closes the current channel and starts a new one, so a waiter takes
// the channel, checks the store, and sleeps on the channel until the next
// commit.
type notifier struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// changed returns a channel closed at the next commit.
func (n *notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// atLeast reports whether resource version have is at or after want.
// Resource versions are opaque to clients; when both are integers (etcd
// revisions, as every API server in practice uses) they are compared as
// such, otherwise only equality counts.
func atLeast(have, want string) bool {
	h, err1 := strconv.ParseUint(have, 10, 64)
	w, err2 := strconv.ParseUint(want, 10, 64)
	if err1 != nil || err2 != nil {
		return have == want
	}
	return h >= w
}
