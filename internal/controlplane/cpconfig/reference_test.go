package cpconfig

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestReference checks that docs/controlplane-config.md lists every key once, and that its
// "implemented" column agrees with the notImplemented and unsupportedKeys
// tables.
func TestReference(t *testing.T) {
	data, err := os.ReadFile("../../../docs/controlplane-config.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // key -> implemented column
	for line := range strings.SplitSeq(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) != 5 {
			t.Errorf("row without 5 columns: %s", line)
			continue
		}
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		key := strings.Trim(cols[0], "`")
		if _, dup := rows[key]; dup {
			t.Errorf("%s listed twice", key)
		}
		rows[key] = cols[3]
	}
	modelled := Keys()
	for _, k := range modelled {
		impl, ok := rows[k]
		_, notYet := notImplemented[k]
		switch {
		case !ok:
			t.Errorf("%s missing from docs/controlplane-config.md", k)
		case notYet && !strings.HasPrefix(impl, "no"):
			t.Errorf("%s: implemented column %q, want no (it is in notImplemented)", k, impl)
		case !notYet && impl != "yes":
			t.Errorf("%s: implemented column %q, want yes", k, impl)
		}
	}
	for k := range notImplemented {
		if !slices.Contains(modelled, k) {
			t.Errorf("notImplemented key %s is not a key of File", k)
		}
	}
	for _, k := range unsupportedKeys {
		if impl, ok := rows[k]; !ok || impl != "ignored" {
			t.Errorf("%s: implemented column %q (listed %v), want ignored", k, impl, ok)
		}
	}
	for k := range rows {
		if !slices.Contains(modelled, k) && !slices.Contains(unsupportedKeys, k) {
			t.Errorf("docs/controlplane-config.md lists %s, which is not a key", k)
		}
	}
}
