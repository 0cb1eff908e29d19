package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ApplyChanges applies changes in order in one write transaction.
//
// Every stream has a generation, bumped by SyncBegin; Listed and Upserted
// objects are stamped with their stream's current generation, and SyncEnd
// deletes the stream's objects stamped with an older one. A change for a
// stream without a row (other than SyncBegin and StreamRemoved) creates it
// at generation 1, not syncing. An empty resource version in an Upserted,
// Deleted or Bookmark change leaves the position as it was; SyncEnd sets it
// as given (empty: no resume point).
//
// Once the transaction has committed, the Object of every Listed and
// Upserted change is as stored: key, version and resource completed from
// the stream, UpdatedAt set. A caller can hand it on (to readers waiting
// for it) without reading it back.
func (s *sqlStore) ApplyChanges(ctx context.Context, changes []Change) error {
	return s.applyChanges(ctx, nil, changes)
}

// ApplyChangesFenced applies changes only while f is its agent's live
// session; otherwise it fails with ErrFenced and persists nothing.
func (s *sqlStore) ApplyChangesFenced(ctx context.Context, f Fence, changes []Change) error {
	return s.applyChanges(ctx, &f, changes)
}

func (s *sqlStore) applyChanges(ctx context.Context, fence *Fence, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	for i := range changes {
		if err := validateChange(&changes[i]); err != nil {
			return fmt.Errorf("store: change %d of %d: %w", i, len(changes), err)
		}
	}
	// Prepared before the transaction: the writer pool has one connection,
	// which the transaction holds.
	stmts, err := s.writeStmts(ctx)
	if err != nil {
		return err
	}
	r := &applyReq{ctx: ctx, fence: fence, changes: changes}
	start := time.Now()
	if s.d.groupCommit {
		err = s.group.apply(s, stmts, r)
	} else {
		err = s.applyAlone(stmts, r)
	}
	if err != nil {
		return err
	}
	s.log.Debug("store: changes applied", "changes", len(changes), "duration", time.Since(start))
	return nil
}

// applyAlone applies r in a transaction of its own.
func (s *sqlStore) applyAlone(stmts map[string]*sql.Stmt, r *applyReq) error {
	var now int64
	err := inTx(r.ctx, s.w, nil, func(tx *sql.Tx) error {
		now = s.now().UnixMilli()
		a := s.newApplier(r.ctx, tx, stmts, now)
		defer a.closeStmts()
		if _, err := a.call(r); err != nil {
			return err
		}
		return a.finish(r)
	})
	if err != nil {
		return err
	}
	r.stored(now)
	return nil
}

func (s *sqlStore) newApplier(ctx context.Context, tx *sql.Tx, stmts map[string]*sql.Stmt, now int64) *applier {
	return &applier{
		ctx:     ctx,
		d:       s.d,
		tx:      tx,
		stmts:   stmts,
		now:     now,
		streams: make(map[streamID]*streamState),
	}
}

// call applies r's changes. fenced reports an error from the fence check
// made before anything was written: r's session is not its agent's live
// one. The stream rows are written by flush, once for all the calls of a
// transaction, and r's fence is checked again by finish.
func (a *applier) call(r *applyReq) (fenced bool, err error) {
	r.skipped = map[*Change]bool{}
	if r.fence != nil {
		if err := checkFence(a.ctx, a.tx, a.d, *r.fence); err != nil {
			return errors.Is(err, ErrFenced), err
		}
	}
	a.skipped = r.skipped
	for i := range r.changes {
		if err := a.apply(&r.changes[i]); err != nil {
			c := &r.changes[i]
			return false, fmt.Errorf("store: change %d of %d (%s %s): %w",
				i, len(r.changes), changeName(c.Type), streamName(c.Stream), err)
		}
	}
	return false, nil
}

// finish writes the stream rows and checks the fences of calls again
// (recheckFence), at the end of their transaction.
func (a *applier) finish(calls ...*applyReq) error {
	if err := a.flush(); err != nil {
		return err
	}
	for _, r := range calls {
		if r.fence != nil {
			if err := recheckFence(a.ctx, a.tx, a.d, *r.fence); err != nil {
				return err
			}
		}
	}
	return nil
}

// stored completes r's changes once their transaction committed at now:
// the objects of Listed, Upserted and Applied changes as stored, and nil
// for the Applied ones not persisted.
func (r *applyReq) stored(now int64) {
	for i := range r.changes {
		c := &r.changes[i]
		switch {
		case c.Type == Applied && r.skipped[c]:
			c.Object = nil
		case c.Type == Listed || c.Type == Upserted || c.Type == Applied:
			asStored(c, now)
		}
	}
}

// asStored completes the object of a persisted Listed or Upserted change
// as upsert stored it (same key, version and resource), with its UpdatedAt.
func asStored(c *Change, now int64) {
	o := c.Object
	if key, err := objectKeyOf(c); err == nil {
		o.ObjectKey = key
	}
	if o.Version == "" {
		o.Version = c.Stream.Resource.Version
	}
	if o.Resource == "" {
		o.Resource = c.Stream.Resource.Resource
	}
	o.UpdatedAt = time.UnixMilli(now)
}

// streamID is the primary key of a stream row.
type streamID struct {
	account, group, resource, namespace string
}

// streamState is a stream row as the transaction sees it. Changes update
// it in memory; flush writes the dirty ones once, at the end.
type streamState struct {
	key        StreamKey // last seen, for the descriptive columns
	exists     bool      // the row exists (in the database or pending insert)
	inDB       bool      // the row exists in the database
	dirty      bool
	generation int64
	syncing    bool
	position   string
	updatedAt  int64
}

// applier applies the changes of one ApplyChanges call.
type applier struct {
	ctx     context.Context
	d       dialect
	tx      *sql.Tx
	now     int64
	streams map[streamID]*streamState
	skipped map[*Change]bool // the current call's Applied changes not persisted
	order   []*streamState   // first-touch order, for a deterministic flush

	// stmts are the writer's prepared statements by query (writeStmts).
	stmts map[string]*sql.Stmt

	selectStream, upsertObject, deleteObject, insertStream, updateStream *sql.Stmt
}

func (a *applier) apply(c *Change) error {
	st, err := a.stream(c.Stream)
	if err != nil {
		return err
	}
	switch c.Type {
	case SyncBegin:
		st.exists, st.dirty = true, true
		st.generation++
		st.syncing = true
		st.position = ""
		st.updatedAt = a.now
	case Listed:
		a.ensure(st)
		return a.upsert(c, st.generation)
	case Upserted:
		a.ensure(st)
		if err := a.upsert(c, st.generation); err != nil {
			return err
		}
		a.move(st, c.Object.ResourceVersion)
	case Deleted:
		a.ensure(st)
		if err := a.delete(c); err != nil {
			return err
		}
		rv := c.ResourceVersion
		if rv == "" {
			rv = c.Object.ResourceVersion
		}
		a.move(st, rv)
	case SyncEnd:
		a.ensure(st)
		if err := a.sweep(c.Stream, st.generation); err != nil {
			return err
		}
		st.syncing = false
		st.position = c.ResourceVersion
		st.updatedAt = a.now
		st.dirty = true
	case Bookmark:
		a.ensure(st)
		if !st.syncing {
			a.move(st, c.ResourceVersion)
		}
	case StreamRemoved:
		return a.remove(c.Stream, st)
	case Applied:
		if !st.exists || st.syncing || !rvOlder(st.position, c.Object.ResourceVersion) {
			a.skipped[c] = true // the watch got there first: nothing to add
			return nil
		}
		return a.upsert(c, st.generation)
	default:
		return fmt.Errorf("%w: unknown change type %d", ErrInvalidChange, c.Type)
	}
	return nil
}

// stream returns the state of the stream of k, reading its row the first
// time the transaction meets it.
func (a *applier) stream(k StreamKey) (*streamState, error) {
	id := streamID{k.Account, k.Resource.Group, k.Resource.Resource, k.Namespace}
	if st, ok := a.streams[id]; ok {
		st.key = k
		return st, nil
	}
	st := &streamState{key: k}
	if a.selectStream == nil {
		if err := a.prepare(&a.selectStream, a.d.selectStreamQuery()); err != nil {
			return nil, err
		}
	}
	err := a.selectStream.QueryRowContext(a.ctx, id.account, id.group, id.resource, id.namespace).
		Scan(&st.generation, &st.syncing, &st.position, &st.updatedAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("read stream: %w", err)
	default:
		st.exists, st.inDB = true, true
	}
	a.streams[id] = st
	a.order = append(a.order, st)
	return st, nil
}

// ensure creates the stream row (generation 1, not syncing) if missing.
func (a *applier) ensure(st *streamState) {
	if st.exists {
		return
	}
	st.exists, st.dirty = true, true
	st.generation = 1
	st.syncing = false
	st.position = ""
	st.updatedAt = a.now
}

// move sets the position of the stream (unless rv is empty).
func (a *applier) move(st *streamState, rv string) {
	if rv != "" {
		st.position = rv
	}
	st.updatedAt = a.now
	st.dirty = true
}

func (a *applier) upsert(c *Change, generation int64) error {
	if a.upsertObject == nil {
		if err := a.prepare(&a.upsertObject, a.d.upsertObjectQuery()); err != nil {
			return err
		}
	}
	o := c.Object
	key, err := objectKeyOf(c)
	if err != nil {
		return err
	}
	version, resource := o.Version, o.Resource
	if version == "" {
		version = c.Stream.Resource.Version
	}
	if resource == "" {
		resource = c.Stream.Resource.Resource
	}
	labels, err := encodeLabels(o.Labels)
	if err != nil {
		return err
	}
	body := o.JSON
	if body == nil {
		body = []byte{}
	}
	_, err = a.upsertObject.ExecContext(a.ctx,
		key.Account, key.Group, key.Kind, key.Namespace, key.Name, strings.ToLower(key.Kind),
		version, resource, o.UID, o.ResourceVersion, o.Application,
		labels, generation, body, a.now)
	if err != nil {
		return fmt.Errorf("upsert object %s/%s: %w", key.Namespace, key.Name, err)
	}
	return nil
}

func (a *applier) delete(c *Change) error {
	if a.deleteObject == nil {
		if err := a.prepare(&a.deleteObject, qDeleteObject); err != nil {
			return err
		}
	}
	key, err := objectKeyOf(c)
	if err != nil {
		return err
	}
	if _, err := a.deleteObject.ExecContext(a.ctx, key.Account, key.Group, key.Kind, key.Namespace, key.Name); err != nil {
		return fmt.Errorf("delete object %s/%s: %w", key.Namespace, key.Name, err)
	}
	return nil
}

// sweep deletes the objects of stream k older than generation; with
// generation 0, all of them.
func (a *applier) sweep(k StreamKey, generation int64) error {
	q := `DELETE FROM ` + objectsTable + ` WHERE account = ? AND api_group = ? AND kind = ?`
	args := []any{k.Account, k.Resource.Group, k.Resource.Kind}
	if k.Namespace != "" {
		q += ` AND namespace = ?`
		args = append(args, k.Namespace)
	}
	if generation > 0 {
		q += ` AND generation < ?`
		args = append(args, generation)
	}
	if _, err := a.tx.ExecContext(a.ctx, a.d.rebind(q), args...); err != nil {
		return fmt.Errorf("delete objects of stream: %w", err)
	}
	return nil
}

// remove deletes the stream's objects and row.
func (a *applier) remove(k StreamKey, st *streamState) error {
	if err := a.sweep(k, 0); err != nil {
		return err
	}
	if st.inDB {
		q := `DELETE FROM ` + streamsTable + ` WHERE account = ? AND api_group = ? AND resource = ? AND namespace = ?`
		if _, err := a.tx.ExecContext(a.ctx, a.d.rebind(q), k.Account, k.Resource.Group, k.Resource.Resource, k.Namespace); err != nil {
			return fmt.Errorf("delete stream: %w", err)
		}
	}
	*st = streamState{key: k}
	return nil
}

// flush writes the stream rows changed by the transaction.
func (a *applier) flush() error {
	if err := a.prepare(&a.insertStream, qInsertStream); err != nil {
		return err
	}
	if err := a.prepare(&a.updateStream, qUpdateStream); err != nil {
		return err
	}
	for _, st := range a.order {
		if !st.dirty || !st.exists {
			continue
		}
		k := st.key
		var err error
		if st.inDB {
			_, err = a.updateStream.ExecContext(a.ctx,
				k.Resource.Version, k.Resource.Kind, k.Resource.Namespaced, k.SelectorHash,
				st.generation, st.position, st.syncing, st.updatedAt,
				k.Account, k.Resource.Group, k.Resource.Resource, k.Namespace)
		} else {
			_, err = a.insertStream.ExecContext(a.ctx,
				k.Account, k.Resource.Group, k.Resource.Resource, k.Namespace,
				k.Resource.Version, k.Resource.Kind, k.Resource.Namespaced, k.SelectorHash,
				st.generation, st.position, st.syncing, st.updatedAt)
		}
		if err != nil {
			return fmt.Errorf("store: write stream %s: %w", streamName(k), err)
		}
	}
	return nil
}

// prepare binds the writer's prepared statement for q to the transaction:
// statements are parsed once per connection, not per batch.
func (a *applier) prepare(dst **sql.Stmt, q string) error {
	stmt, ok := a.stmts[q]
	if !ok {
		return fmt.Errorf("prepare: statement not prepared: %s", q)
	}
	*dst = a.tx.StmtContext(a.ctx, stmt)
	return nil
}

// The statements of ApplyChanges, written with ? placeholders; writeStmts
// prepares them, rebound for the dialect, keyed by these strings.
const (
	qSelectStream = `SELECT generation, syncing, resource_version, updated_at_ms FROM ` + streamsTable +
		` WHERE account = ? AND api_group = ? AND resource = ? AND namespace = ?`
	qDeleteObject = `DELETE FROM ` + objectsTable +
		` WHERE account = ? AND api_group = ? AND kind = ? AND namespace = ? AND name = ?`
	qInsertStream = `INSERT INTO ` + streamsTable + ` (account, api_group, resource, namespace,
	api_version, kind, namespaced, selector_hash, generation, resource_version, syncing, updated_at_ms)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateStream = `UPDATE ` + streamsTable + ` SET api_version = ?, kind = ?, namespaced = ?, selector_hash = ?,
	generation = ?, resource_version = ?, syncing = ?, updated_at_ms = ?
	WHERE account = ? AND api_group = ? AND resource = ? AND namespace = ?`
)

// selectStreamQuery reads a stream row, locking it where transactions run
// concurrently: the row is read, changed in memory and written back.
func (d dialect) selectStreamQuery() string {
	return qSelectStream + d.forUpdate
}

// upsertObjectQuery is the dialect's insert-or-update of an object row.
func (d dialect) upsertObjectQuery() string {
	return d.insertOrUpdate(objectsTable, []string{
		"account", "api_group", "kind", "namespace", "name", "kind_lower",
		"api_version", "resource", "uid", "resource_version", "application",
		"labels", "generation", "body", "updated_at_ms",
	}, []string{"account", "api_group", "kind", "namespace", "name"})
}

// writeQueries are the queries writeStmts prepares.
func (d dialect) writeQueries() []string {
	return []string{d.selectStreamQuery(), qDeleteObject, qInsertStream, qUpdateStream, d.upsertObjectQuery()}
}

func (a *applier) closeStmts() {
	for _, s := range []*sql.Stmt{a.selectStream, a.upsertObject, a.deleteObject, a.insertStream, a.updateStream} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// rvOlder reports whether resource version a is older than b, both read as
// the decimal numbers etcd issues; false when either is not one.
func rvOlder(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}
