package controlplane

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/kubesvc/kubesvc/internal/store"
)

// notifier tells readers waiting for the cache (read-your-writes) what each
// persisted batch touched, so that a waiter queries the store again only
// when its object may have changed. Commits form a linked list: a waiter
// holds the commit it is waiting for and, once that is closed, walks the
// list to the open one, seeing every commit in between.
type notifier struct {
	mu  sync.Mutex // guards cur
	cur *commit
}

// commit is one persisted batch. keys, all and next are written before done
// is closed and never after.
type commit struct {
	done chan struct{}
	// keys are the objects touched, each with the object as the batch
	// left it in the store, or nil when it was deleted.
	keys map[string]*store.Object
	all  bool // the batch may have touched any object (sync end, removal)
	next *commit
}

func newNotifier() *notifier { return &notifier{cur: &commit{done: make(chan struct{})}} }

// current returns the commit that has not happened yet.
func (n *notifier) current() *commit {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur
}

// publish records a persisted batch and wakes its waiters. changes are
// those ApplyChanges persisted: their objects are as stored.
func (n *notifier) publish(changes []store.Change) {
	keys := make(map[string]*store.Object, len(changes))
	all := false
	for _, c := range changes {
		switch c.Type {
		case store.Listed, store.Upserted:
			keys[objectKeyString(c.Object.ObjectKey)] = c.Object
		case store.Applied:
			if c.Object != nil { // nil: not stored, the watch was ahead
				keys[objectKeyString(c.Object.ObjectKey)] = c.Object
			}
		case store.Deleted:
			keys[objectKeyString(c.Object.ObjectKey)] = nil
		case store.SyncEnd, store.StreamRemoved:
			all = true
		}
	}
	n.mu.Lock()
	c := n.cur
	c.keys, c.all, c.next = keys, all, &commit{done: make(chan struct{})}
	n.cur = c.next
	n.mu.Unlock()
	close(c.done)
}

// publishAll wakes every waiter to look again (an account was dropped).
func (n *notifier) publishAll() {
	n.mu.Lock()
	c := n.cur
	c.all, c.next = true, &commit{done: make(chan struct{})}
	n.cur = c.next
	n.mu.Unlock()
	close(c.done)
}

// touched walks from c over every commit that has happened and reports
// whether one of them may have changed key; it returns the first commit
// that has not happened yet. When the last commit that touched key stored
// an object under it (and no later one may have changed it), that object
// is returned too: it is what the store held when that commit returned, so
// a waiter can answer with it instead of reading it back. Otherwise (a
// deletion, a sync end...) the waiter must read the store.
func touched(c *commit, key string) (_ *commit, hit bool, stored *store.Object) {
	for {
		select {
		case <-c.done:
			if o, ok := c.keys[key]; ok || c.all {
				hit, stored = true, o
				if c.all {
					stored = nil
				}
			}
			c = c.next
		default:
			return c, hit, stored
		}
	}
}

// afterCommits is what a reader waiting for key does once commit c has
// happened: it walks the commits that happened since and returns the first
// that has not, with the object as they left it. That is the object the
// last one stored under key, when it has it; else what the store holds, if
// one of them may have changed key; else o and err unchanged.
func (s *Server) afterCommits(ctx context.Context, c *commit, watchKey string, key store.ObjectKey, groupGiven bool, o store.Object, err error) (*commit, store.Object, error) {
	c, hit, stored := touched(c, watchKey)
	switch {
	case stored != nil && groupGiven && stored.Group == key.Group && len(stored.JSON) > 0:
		return c, *stored, nil // as committed: no need to read it back
	case hit:
		o, err = s.lookup(ctx, key, groupGiven)
	}
	return c, o, err
}

// objectKeyString names an object for waiters. The group is left out: a
// reader may not name it, and a collision only costs one more lookup.
func objectKeyString(k store.ObjectKey) string {
	return k.Account + "|" + strings.ToLower(k.Kind) + "|" + k.Namespace + "|" + k.Name
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
