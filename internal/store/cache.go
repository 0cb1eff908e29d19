package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// ResumePoints returns the positions of the streams of accounts (all
// accounts if empty) that are not syncing and have a position.
func (s *sqlStore) ResumePoints(ctx context.Context, accounts []string) ([]ResumePoint, error) {
	return s.streams(ctx, accounts, true)
}

// Streams returns every stream of accounts (all accounts if empty); a
// syncing stream has an empty ResourceVersion.
func (s *sqlStore) Streams(ctx context.Context, accounts []string) ([]ResumePoint, error) {
	return s.streams(ctx, accounts, false)
}

func (s *sqlStore) streams(ctx context.Context, accounts []string, resumableOnly bool) ([]ResumePoint, error) {
	q := `SELECT account, api_group, api_version, resource, kind, namespaced, namespace, selector_hash,
	resource_version, syncing, updated_at_ms FROM ` + streamsTable + ` WHERE 1 = 1`
	var args []any
	if resumableOnly {
		q += ` AND syncing = ? AND resource_version <> ?`
		args = append(args, false, "")
	}
	if len(accounts) > 0 {
		q += ` AND account IN (` + placeholders(len(accounts)) + `)`
		for _, a := range accounts {
			args = append(args, a)
		}
	}
	q += ` ORDER BY account, api_group, resource, namespace`
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: resume points: %w", err)
	}
	defer rows.Close()
	var out []ResumePoint
	for rows.Next() {
		var p ResumePoint
		var ms int64
		var syncing bool
		r := &p.Stream.Resource
		if err := rows.Scan(&p.Stream.Account, &r.Group, &r.Version, &r.Resource, &r.Kind, &r.Namespaced,
			&p.Stream.Namespace, &p.Stream.SelectorHash, &p.ResourceVersion, &syncing, &ms); err != nil {
			return nil, fmt.Errorf("store: resume points: %w", err)
		}
		if syncing {
			p.ResourceVersion = ""
		}
		p.UpdatedAt = time.UnixMilli(ms)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: resume points: %w", err)
	}
	return out, nil
}

// objectColumns are the columns scanned by scanObject, in order.
const objectColumns = `account, api_group, kind, namespace, name, api_version, resource,
	uid, resource_version, application, labels, body, updated_at_ms`

func scanObject(sc interface{ Scan(...any) error }) (Object, error) {
	var o Object
	var labelsJSON string
	var ms int64
	err := sc.Scan(&o.Account, &o.Group, &o.Kind, &o.Namespace, &o.Name, &o.Version, &o.Resource,
		&o.UID, &o.ResourceVersion, &o.Application, &labelsJSON, &o.JSON, &ms)
	if err != nil {
		return o, err
	}
	o.UpdatedAt = time.UnixMilli(ms)
	if labelsJSON != "" && labelsJSON != "{}" && labelsJSON != "null" {
		if err := json.Unmarshal([]byte(labelsJSON), &o.Labels); err != nil {
			return o, fmt.Errorf("decode labels of %s/%s: %w", o.Namespace, o.Name, err)
		}
	}
	return o, nil
}

// ListObjects returns the objects matching q, ordered by account, kind,
// namespace, name. The selector is applied on the decoded labels, before
// the limit.
func (s *sqlStore) ListObjects(ctx context.Context, q Query) ([]Object, error) {
	var where []string
	var args []any
	add := func(cond string, v string) {
		if v != "" {
			where = append(where, cond)
			args = append(args, v)
		}
	}
	add("account = ?", q.Account)
	add("api_group = ?", q.Group)
	if q.Group == "" && q.CoreGroup {
		where = append(where, "api_group = ''")
	}
	add("kind_lower = ?", strings.ToLower(q.Kind))
	add("namespace = ?", q.Namespace)
	add("name = ?", q.Name)
	if q.NamePrefix != "" {
		// Keys are ASCII in a binary collation on every backend (checkKey):
		// the names with the prefix sort from it up to its successor (its
		// last byte below DEL incremented). MariaDB's ascii_bin pads with
		// spaces, so a name whose byte after the prefix is a control
		// character sorts before the prefix there and is missed; no
		// Kubernetes name of the kinds read by prefix (Pods, Events) has
		// one.
		where = append(where, "name >= ?")
		args = append(args, q.NamePrefix)
		if end, ok := prefixEnd(q.NamePrefix); ok {
			where = append(where, "name < ?")
			args = append(args, end)
		}
	}
	add("application = ?", q.Application)
	if a := q.After; a != nil {
		where = append(where, "(account, kind, namespace, name, api_group) > (?, ?, ?, ?, ?)")
		args = append(args, a.Account, a.Kind, a.Namespace, a.Name, a.Group)
	}
	stmt := `SELECT ` + objectColumns + ` FROM ` + objectsTable
	if len(where) > 0 {
		stmt += ` WHERE ` + strings.Join(where, " AND ")
	}
	stmt += ` ORDER BY account, kind, namespace, name, api_group`
	sel := q.Selector
	if sel != nil && sel.Empty() {
		sel = nil
	}
	if q.Limit > 0 && sel == nil {
		stmt += ` LIMIT ?`
		args = append(args, q.Limit)
	}
	ps, err := s.readStmt(ctx, s.d.rebind(stmt))
	if err != nil {
		return nil, fmt.Errorf("store: list objects: %w", err)
	}
	rows, err := ps.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list objects: %w", err)
	}
	defer rows.Close()
	var out []Object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list objects: %w", err)
		}
		if sel != nil && !sel.Matches(labels.Set(o.Labels)) {
			continue
		}
		out = append(out, o)
		if q.Limit > 0 && len(out) >= q.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list objects: %w", err)
	}
	return out, nil
}

// GetObject returns the object of key (kind matched case-insensitively).
func (s *sqlStore) GetObject(ctx context.Context, key ObjectKey) (Object, error) {
	q := s.d.rebind(`SELECT ` + objectColumns + ` FROM ` + objectsTable + `
	WHERE account = ? AND api_group = ? AND kind_lower = ? AND namespace = ? AND name = ?`)
	ps, err := s.readStmt(ctx, q)
	if err != nil {
		return Object{}, fmt.Errorf("store: get object: %w", err)
	}
	row := ps.QueryRowContext(ctx, key.Account, key.Group, strings.ToLower(key.Kind), key.Namespace, key.Name)
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Object{}, fmt.Errorf("store: object %s/%s %s/%s in account %q: %w",
			key.Group, key.Kind, key.Namespace, key.Name, key.Account, ErrNotFound)
	}
	if err != nil {
		return Object{}, fmt.Errorf("store: get object: %w", err)
	}
	return o, nil
}

// Namespaces returns the Namespace objects of the account and the
// namespaces holding its objects, sorted.
func (s *sqlStore) Namespaces(ctx context.Context, account string) ([]string, error) {
	q := s.d.rebind(`SELECT name FROM ` + objectsTable + `
	WHERE account = ? AND api_group = ? AND kind_lower = ? AND namespace = ?
	UNION
	SELECT DISTINCT namespace FROM ` + objectsTable + ` WHERE account = ? AND namespace <> ?`)
	rows, err := s.r.QueryContext(ctx, q, account, "", "namespace", "", account, "")
	if err != nil {
		return nil, fmt.Errorf("store: namespaces: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ns string
		if err := rows.Scan(&ns); err != nil {
			return nil, fmt.Errorf("store: namespaces: %w", err)
		}
		out = append(out, ns)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: namespaces: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// CachedAccounts counts the objects and streams of every account having
// any, sorted by account.
func (s *sqlStore) CachedAccounts(ctx context.Context) ([]AccountSummary, error) {
	byAccount := map[string]*AccountSummary{}
	err := inTx(ctx, s.r, s.d.readTxOptions(), func(tx *sql.Tx) error {
		clear(byAccount) // from an attempt that was rolled back
		for _, t := range []struct {
			table string
			count func(*AccountSummary, int)
		}{
			{objectsTable, func(a *AccountSummary, n int) { a.Objects = n }},
			{streamsTable, func(a *AccountSummary, n int) { a.Streams = n }},
		} {
			rows, err := tx.QueryContext(ctx, `SELECT account, COUNT(*) FROM `+t.table+` GROUP BY account`)
			if err != nil {
				return fmt.Errorf("store: count %s: %w", t.table, err)
			}
			for rows.Next() {
				var account string
				var n int
				if err := rows.Scan(&account, &n); err != nil {
					rows.Close()
					return fmt.Errorf("store: count %s: %w", t.table, err)
				}
				a := byAccount[account]
				if a == nil {
					a = &AccountSummary{Account: account}
					byAccount[account] = a
				}
				t.count(a, n)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return fmt.Errorf("store: count %s: %w", t.table, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]AccountSummary, 0, len(byAccount))
	for _, a := range byAccount {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out, nil
}

// prefixEnd is the least string above every string starting with p: p
// with its last byte below DEL incremented and what follows it dropped.
// There is none (ok false) when every byte of p is DEL.
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0x7f {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
