package store

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Fit refuses keys no backend stores and cuts an over-long application at
// a character boundary.
func TestFit(t *testing.T) {
	stream := StreamKey{Account: "a", Resource: Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap"}, Namespace: ""}
	change := func(name, app string) Change {
		return Change{Type: Upserted, Stream: stream, Object: &Object{ObjectKey: ObjectKey{Namespace: "ns", Name: name}, Application: app}}
	}
	for _, name := range []string{strings.Repeat("n", 254), "rôle", "x\x80"} {
		c := change(name, "")
		if err := Fit(&c); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	c := change(strings.Repeat("n", 253), strings.Repeat("é", 200))
	if err := Fit(&c); err != nil {
		t.Fatal(err)
	}
	if app := c.Object.Application; len(app) > 253 || !utf8.ValidString(app) || len(app) < 250 {
		t.Errorf("application cut to %d bytes (valid UTF-8: %v)", len(app), utf8.ValidString(app))
	}
	long := Change{Type: SyncBegin, Stream: stream}
	long.Stream.Account = strings.Repeat("a", 254)
	if err := Fit(&long); err == nil {
		t.Error("account of 254 bytes accepted")
	}
}
