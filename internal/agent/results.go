package agent

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// ResponseRetries is clouddriver.responseRetries.*: how an operation's
// result reaches the control plane when the stream breaks before the
// control plane acknowledged it.
type ResponseRetries struct {
	// Enabled keeps unacknowledged results and sends them again on the
	// next session; false sends each result once.
	Enabled bool
	// MaxRetries is how many times a result is sent again after its first
	// attempt.
	MaxRetries int
	// BackOff is the least time between two attempts of one result.
	BackOff time.Duration
}

// DefaultResponseRetries are the documented defaults (true, 3, 3000 ms).
func DefaultResponseRetries() ResponseRetries {
	return ResponseRetries{Enabled: true, MaxRetries: 3, BackOff: 3 * time.Second}
}

// maxKeptResults bounds the results kept awaiting acknowledgement; beyond
// it the oldest is dropped (its task then fails on the control plane by
// timeout, never silently succeeds).
const maxKeptResults = 256

// operator executes operations independently of sessions (a session that
// breaks does not cancel an operation half-way; its result goes out on the
// next session) and keeps their results until acknowledged.
type operator struct {
	ctx     context.Context // ends when the agent stops
	cancel  context.CancelFunc
	wg      sync.WaitGroup // running operations
	sem     chan struct{}  // bounds the operations executed at once
	results *resultBox

	// mu guards seen. Lock order: mu, then results.mu (never the other
	// way round).
	mu   sync.Mutex
	seen map[string]*seenOp
}

// seenOp remembers an operation id received recently: a control plane that
// lost track of it (a replica died while forwarding it) sends it again, to
// this agent or, after a reconnection, through another replica. It runs
// once; the duplicate gets the same result.
type seenOp struct {
	account string
	res     *kubesvcv1.OperationResult // nil while running
	until   time.Time
}

// seenFor is how long an operation id is remembered after its deadline.
const seenFor = 10 * time.Minute

// maxSeen bounds the remembered ids (the oldest go first).
const maxSeen = 1024

// dedupe reports whether op was seen before; a finished one's result is
// queued for sending again.
func (o *operator) dedupe(op *kubesvcv1.Operation, deadline time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if s, ok := o.seen[op.GetId()]; ok && now.Before(s.until) {
		if s.res != nil {
			o.results.put(s.res, deadline)
		}
		return true
	}
	if len(o.seen) >= maxSeen {
		o.evictSeen(now)
	}
	until := now.Add(seenFor)
	if !deadline.IsZero() {
		until = deadline.Add(seenFor)
	}
	o.seen[op.GetId()] = &seenOp{account: op.GetAccount(), until: until}
	return false
}

// accountOf returns the account of a remembered operation id.
func (o *operator) accountOf(id string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.seen[id]; ok {
		return s.account
	}
	return ""
}

func (o *operator) finished(res *kubesvcv1.OperationResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.seen[res.GetId()]; ok {
		s.res = res
	}
}

func newOperator(retries ResponseRetries, log *slog.Logger) *operator {
	ctx, cancel := context.WithCancel(context.Background())
	return &operator{ctx: ctx, cancel: cancel, sem: make(chan struct{}, maxConcurrentOperations), results: newResultBox(retries, log),
		seen: map[string]*seenOp{}}
}

// start executes op in the background and keeps its result for sending.
// An operation id already seen is not executed again (see seenOp).
func (o *operator) start(op *kubesvcv1.Operation, exec func(context.Context, *kubesvcv1.Operation) *kubesvcv1.OperationResult) {
	var deadline time.Time
	if dl := op.GetDeadlineMs(); dl > 0 {
		deadline = time.UnixMilli(dl)
	}
	if o.dedupe(op, deadline) {
		return
	}
	o.wg.Go(func() {
		select {
		case o.sem <- struct{}{}:
		case <-o.ctx.Done():
			return
		}
		defer func() { <-o.sem }()
		res := exec(o.ctx, op)
		o.finished(res)
		o.results.put(res, deadline)
	})
}

// stop cancels the running operations and waits for them.
func (o *operator) stop() {
	o.cancel()
	o.wg.Wait()
}

// keptResult is a result awaiting acknowledgement.
type keptResult struct {
	res      *kubesvcv1.OperationResult
	deadline time.Time // the control plane stops waiting then; zero: never
	attempts int       // sessions it was handed to
	last     time.Time // when it was last handed to a session
	session  uint64    // the session it was last handed to
	seq      uint64    // arrival order, for eviction
}

// resultBox holds the results of operations until the control plane
// acknowledges them. Each session takes what is due (sendable) from it: a
// new result at once; one handed to an earlier session that ended without
// its acknowledgement again, BackOff after its previous attempt, up to
// 1+MaxRetries attempts.
type resultBox struct {
	retries ResponseRetries
	log     *slog.Logger
	changed chan struct{} // signalled when a result is added; capacity 1

	mu       sync.Mutex // guards the fields below
	kept     map[string]*keptResult
	seq      uint64
	sessions uint64
}

func newResultBox(retries ResponseRetries, log *slog.Logger) *resultBox {
	return &resultBox{retries: retries, log: log, changed: make(chan struct{}, 1), kept: map[string]*keptResult{}}
}

// put keeps a new result, dropping the oldest beyond maxKeptResults.
func (b *resultBox) put(res *kubesvcv1.OperationResult, deadline time.Time) {
	b.mu.Lock()
	b.seq++
	b.kept[res.GetId()] = &keptResult{res: res, deadline: deadline, seq: b.seq}
	if len(b.kept) > maxKeptResults {
		var oldest *keptResult
		for _, k := range b.kept {
			if oldest == nil || k.seq < oldest.seq {
				oldest = k
			}
		}
		delete(b.kept, oldest.res.GetId())
		b.log.Warn("too many operation results await acknowledgement; dropped the oldest", "operation", oldest.res.GetId(), "limit", maxKeptResults)
	}
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// ack drops an acknowledged result.
func (b *resultBox) ack(id string) {
	b.mu.Lock()
	delete(b.kept, id)
	b.mu.Unlock()
}

// newSession returns the number of a new session, for due.
func (b *resultBox) newSession() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessions++
	return b.sessions
}

// len returns how many results await acknowledgement.
func (b *resultBox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.kept)
}

// due returns, oldest first, the results session should send now and
// marks them handed to it; results out of attempts or past their deadline
// are dropped. next is when another result becomes due (zero: none waits).
func (b *resultBox) due(session uint64, now time.Time) (out []*kubesvcv1.OperationResult, next time.Time) {
	attempts := 1
	if b.retries.Enabled {
		attempts += max(b.retries.MaxRetries, 0)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var ready []*keptResult
	for id, k := range b.kept {
		// A result awaiting its acknowledgement on this session is sent
		// again only if none came for sameSessionRetry (the control plane
		// could not record it, and said so by not acknowledging); one
		// handed to an earlier session, backOffMs after its last attempt.
		wait := b.retries.BackOff
		if k.session == session {
			if !b.retries.Enabled {
				continue
			}
			wait = max(b.retries.BackOff, sameSessionRetry)
		}
		switch at := k.last.Add(wait); {
		case !k.deadline.IsZero() && now.After(k.deadline):
			b.log.Warn("operation result not acknowledged before the control plane's deadline; dropped", "operation", id, "attempts", k.attempts)
			delete(b.kept, id)
			continue
		case k.attempts > 0 && at.After(now):
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		case k.attempts >= attempts:
			b.log.Warn("operation result not acknowledged after every retry (clouddriver.responseRetries); dropped", "operation", id, "attempts", k.attempts)
			delete(b.kept, id)
			continue
		}
		ready = append(ready, k)
	}
	// Oldest first: the order in which they were produced.
	slices.SortFunc(ready, func(x, y *keptResult) int { return cmp.Compare(x.seq, y.seq) })
	for _, k := range ready {
		if k.attempts > 0 {
			b.log.Info("sending an unacknowledged operation result again", "operation", k.res.GetId(), "attempt", k.attempts+1)
		}
		k.attempts++
		k.last, k.session = now, session
		out = append(out, k.res)
		if !b.retries.Enabled {
			delete(b.kept, k.res.GetId()) // sent once, never kept
		}
	}
	return out, next
}

// sameSessionRetry is the least time before a result unacknowledged on a
// live session is sent again on it.
const sameSessionRetry = 10 * time.Second

// evictSeen makes room in the remembered operation ids: expired ones
// first, then the finished ones that expire soonest; a running operation
// is never forgotten (its duplicate would run it twice). Called with o.mu
// held.
func (o *operator) evictSeen(now time.Time) {
	for id, s := range o.seen {
		if now.After(s.until) {
			delete(o.seen, id)
		}
	}
	if len(o.seen) < maxSeen {
		return
	}
	// Down to seven eighths at once, so that the next maxSeen/8
	// operations need no eviction: evicting one id per operation would
	// sort every id on every operation.
	type aged struct {
		id    string
		until time.Time
	}
	finished := make([]aged, 0, len(o.seen))
	for id, s := range o.seen {
		if s.res != nil {
			finished = append(finished, aged{id, s.until})
		}
	}
	slices.SortFunc(finished, func(a, b aged) int { return a.until.Compare(b.until) })
	for _, f := range finished[:min(len(finished), len(o.seen)-maxSeen*7/8)] {
		delete(o.seen, f.id)
	}
}
