package agent

import (
	"fmt"
	"sync"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// maxInbox bounds the requests (operations, account commands) the control
// plane may have sent that the agent has not taken up yet. Far above what
// a control plane sends (it waits for each operation's result); a control
// plane past it is broken, and the session ends.
const maxInbox = 10_000

// inbox hands requests from the receive loop to their consumer without
// ever making the receive loop wait: behind a request it could not hand
// over, the batch acknowledgements would stay unread, and a consumer
// waiting for room in the send queue waits for exactly those.
type inbox[T any] struct {
	what  string
	ready chan struct{} // capacity 1: signalled when items were added

	mu    sync.Mutex // guards items
	items []T
}

func newInbox[T any](what string) *inbox[T] {
	return &inbox[T]{what: what, ready: make(chan struct{}, 1)}
}

// push queues x; it fails only past maxInbox.
func (b *inbox[T]) push(x T) error {
	b.mu.Lock()
	if len(b.items) >= maxInbox {
		b.mu.Unlock()
		return fmt.Errorf("control plane sent more than %d %s the agent has not taken up", maxInbox, b.what)
	}
	b.items = append(b.items, x)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return nil
}

// take returns what is queued, in order, and empties the inbox. Call it
// when ready fires.
func (b *inbox[T]) take() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.items
	b.items = nil
	return out
}

// inboxes are a session's: what the receive loop hands to the other loops.
type inboxes struct {
	cmds   *inbox[*kubesvcv1.AccountCommand]
	ops    *inbox[*kubesvcv1.Operation]
	relays *inbox[*proxyCall]
}

func newInboxes() inboxes {
	return inboxes{
		cmds:   newInbox[*kubesvcv1.AccountCommand]("account commands"),
		ops:    newInbox[*kubesvcv1.Operation]("operations"),
		relays: newInbox[*proxyCall]("proxied requests"),
	}
}
