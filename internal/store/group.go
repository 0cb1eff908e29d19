package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// Group commit (dialects with groupCommit: SQLite).
//
// Every agent session persists each batch it receives with ApplyChanges,
// and SQLite has one writer connection: with many agents sending small
// batches, each one its own transaction, the writer spends most of its
// time in BEGIN and COMMIT (the WAL frames of every commit) and the
// sessions queue behind each other. So concurrent calls share
// transactions: a call that finds no transaction of ApplyChanges running
// runs one itself, with no wait and no hand-off; calls that arrive while
// it runs queue, and when it ends, the first of them leads the next
// transaction, taking every queued call with it (up to maxGroupChanges).
// The grouping costs a call nothing it would not have waited for anyway.
//
// Each call keeps its own meaning: its changes are applied in order, in
// the order the calls arrived; a call whose fence fails (checked before
// it writes anything) gets ErrFenced and the others commit. A call whose
// changes fail rolls the group back: the calls before it commit together
// again, it runs alone (its own error), then the calls after it. A failure
// at the end of the transaction (the commit) runs every call alone. A
// call whose context ends while it waits in the queue leaves it with the
// context's error; once taken into a group it waits for the group's
// outcome, which is its own: the shared transaction is cancelled only
// when every call's context has ended, so a call may come back committed
// after its context ended (as a commit racing a cancellation can).

// maxGroupChanges bounds the changes of one group transaction (a call
// larger than that runs alone): a commit of a few thousand rows stays
// in the tens of milliseconds.
const maxGroupChanges = 2048

// applyReq is one ApplyChanges call.
type applyReq struct {
	ctx     context.Context
	fence   *Fence
	changes []Change

	// Set by whoever runs the call's transaction.
	skipped map[*Change]bool // Applied changes not persisted, by the committed attempt
	err     error

	done chan struct{} // closed once a leader set err (a call taken into another's group)
	lead chan struct{} // closed when the call is to lead the next group
}

// committer queues the calls of ApplyChanges that arrive while a group
// runs.
type committer struct {
	mu      sync.Mutex
	running bool        // a group is being committed by its leader
	queue   []*applyReq // calls waiting for a group, in arrival order
	// shared counts the transactions committed for more than one call,
	// sharedCalls the calls they committed.
	shared, sharedCalls atomic.Int64
}

// GroupCommits reports the transactions ApplyChanges shared between
// concurrent calls so far (SQLite; 0 elsewhere) and the calls they
// committed: their ratio is the calls per shared transaction.
func (s *sqlStore) GroupCommits() (transactions, calls int64) {
	return s.group.shared.Load(), s.group.sharedCalls.Load()
}

// apply runs r, in a group of calls when others are waiting.
func (g *committer) apply(s *sqlStore, stmts map[string]*sql.Stmt, r *applyReq) error {
	g.mu.Lock()
	if !g.running {
		g.running = true
		g.mu.Unlock()
	} else {
		r.done, r.lead = make(chan struct{}), make(chan struct{})
		g.queue = append(g.queue, r)
		g.mu.Unlock()
		if !g.wait(r) {
			return r.err
		}
	}
	// r leads: the group is r and the calls queued behind it.
	group := []*applyReq{r}
	n := len(r.changes)
	g.mu.Lock()
	for len(g.queue) > 0 && n+len(g.queue[0].changes) <= maxGroupChanges {
		n += len(g.queue[0].changes)
		group = append(group, g.queue[0])
		g.queue = g.queue[1:]
	}
	g.mu.Unlock()

	defer g.handOff(group)
	s.commitGroup(stmts, group)
	return r.err
}

// errGroupPanicked is the outcome of the calls of a group whose leader
// panicked: the panic goes on in the leader's goroutine.
var errGroupPanicked = errors.New("store: the transaction shared with this call panicked")

// handOff ends the group a leader committed: its other calls are told
// their outcome, and the first call queued meanwhile leads the next
// group. Deferred, so that a panic in the leader does not leave the
// committer running for ever with every later call queued behind it.
func (g *committer) handOff(group []*applyReq) {
	p := recover()
	if p != nil {
		for _, m := range group[1:] {
			m.err = errGroupPanicked
		}
	}
	for _, m := range group[1:] {
		close(m.done)
	}
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.running = false
	} else {
		next := g.queue[0]
		g.queue = g.queue[1:]
		close(next.lead)
	}
	g.mu.Unlock()
	if p != nil {
		panic(p)
	}
}

// wait waits for r's turn: true when r is to lead the next group, false
// when r is done (r.err set: by a leader, or the context's error while r
// still waited in the queue).
func (g *committer) wait(r *applyReq) (lead bool) {
	select {
	case <-r.done:
		return false
	case <-r.lead:
		return true
	case <-r.ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.queue, r); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
		g.mu.Unlock()
		r.err = r.ctx.Err()
		return false
	}
	g.mu.Unlock()
	// Taken into a group, or made leader, already: see it through.
	select {
	case <-r.done:
		return false
	case <-r.lead:
		return true
	}
}

// commitGroup applies the calls of group in one transaction, setting
// each call's err; a call whose context already ended is left out with
// its error.
func (s *sqlStore) commitGroup(stmts map[string]*sql.Stmt, group []*applyReq) {
	live := make([]*applyReq, 0, len(group))
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		live[0].err = s.applyAlone(stmts, live[0])
		return
	}
	ctx, stop := groupContext(live)
	defer stop()
	var now int64
	failed := -1 // the call whose changes failed, if one did
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		now, failed = s.now().UnixMilli(), -1
		a := s.newApplier(ctx, tx, stmts, now)
		defer a.closeStmts()
		var applied []*applyReq
		for i, r := range live {
			fenced, err := a.call(r)
			r.err = err
			switch {
			case err == nil:
				applied = append(applied, r)
			case !fenced:
				failed = i
				return err
			}
		}
		return a.finish(applied...)
	})
	if err == nil {
		committed := 0
		for _, r := range live {
			if r.err == nil {
				r.stored(now)
				committed++
			}
		}
		s.group.shared.Add(1)
		s.group.sharedCalls.Add(int64(committed))
		s.log.Debug("store: calls committed together", "calls", len(live))
		return
	}
	if failed < 0 {
		// The end of the transaction failed (stream rows, a fence checked
		// again, the commit): each call alone, for its own outcome.
		for _, r := range live {
			r.err = s.applyAlone(stmts, r)
		}
		return
	}
	// One call's changes failed: the calls before it share a transaction
	// again, it has one of its own (its outcome), and so do the calls
	// after it, together; in their order.
	s.commitGroup(stmts, live[:failed])
	live[failed].err = s.applyAlone(stmts, live[failed])
	s.commitGroup(stmts, live[failed+1:])
}

// groupContext is the context of a group's transaction: it ends when
// every call's context has ended (a call's caller giving up must not fail
// the others).
func groupContext(calls []*applyReq) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(calls[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(calls)))
	stops := make([]func() bool, 0, len(calls))
	for _, r := range calls {
		stops = append(stops, context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
