package store

import "testing"

func TestRebind(t *testing.T) {
	q := "SELECT a FROM t WHERE x = ? AND y IN (?, ?)"
	if got := sqliteDialect().rebind(q); got != q {
		t.Errorf("sqlite rebind = %q", got)
	}
	pg := dialect{numbered: true}
	if got, want := pg.rebind(q), "SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)"; got != want {
		t.Errorf("numbered rebind = %q, want %q", got, want)
	}
}

func TestInsertOrUpdate(t *testing.T) {
	cols, key := []string{"k1", "k2", "a", "b"}, []string{"k1", "k2"}
	for _, tc := range []struct {
		d    dialect
		want string
	}{
		{sqliteDialect(), "INSERT INTO t (k1, k2, a, b) VALUES (?, ?, ?, ?) ON CONFLICT (k1, k2) DO UPDATE SET a = excluded.a, b = excluded.b"},
		{dialect{numbered: true, upsert: onConflict}, "INSERT INTO t (k1, k2, a, b) VALUES ($1, $2, $3, $4) ON CONFLICT (k1, k2) DO UPDATE SET a = excluded.a, b = excluded.b"},
		{dialect{upsert: onDuplicateKey}, "INSERT INTO t (k1, k2, a, b) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"},
	} {
		if got := tc.d.insertOrUpdate("t", cols, key); got != tc.want {
			t.Errorf("insertOrUpdate:\n got %s\nwant %s", got, tc.want)
		}
	}
}

func TestMigrationsContiguous(t *testing.T) {
	for i, m := range migrations() {
		if m.version != int64(i+1) {
			t.Errorf("migration #%d has version %d", i, m.version)
		}
		if len(m.up(sqliteDialect())) == 0 {
			t.Errorf("migration %d has no statement", m.version)
		}
		if m.compatibleFrom < 0 || m.compatibleFrom > m.version {
			t.Errorf("migration %d: compatibleFrom %d is neither an older version nor 0 or its own", m.version, m.compatibleFrom)
		}
		if m.version < recordsCompatibility && m.compatibleFrom != 0 {
			t.Errorf("migration %d: compatibleFrom %d cannot be recorded before migration %d", m.version, m.compatibleFrom, recordsCompatibility)
		}
	}
}

func TestApplicationOf(t *testing.T) {
	for _, tc := range []struct {
		ann, lab map[string]string
		want     string
	}{
		{nil, nil, ""},
		{map[string]string{"moniker.spinnaker.io/application": "shop"}, map[string]string{"app.kubernetes.io/name": "web"}, "shop"},
		{map[string]string{"moniker.spinnaker.io/application": ""}, map[string]string{"app.kubernetes.io/name": "web"}, "web"},
		{map[string]string{"other": "x"}, map[string]string{"app": "nope"}, ""},
	} {
		if got := ApplicationOf(tc.ann, tc.lab); got != tc.want {
			t.Errorf("ApplicationOf(%v, %v) = %q, want %q", tc.ann, tc.lab, got, tc.want)
		}
	}
}
