package ident

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name  string
		agent bool
		says  string // "" when valid
	}{
		{name: "prod-eu_1.x:y@z"},
		{name: strings.Repeat("a", MaxAccount)},
		{name: strings.Repeat("a", MaxAccount+1), says: "longer than 253 bytes"},
		{name: strings.Repeat("a", MaxAgentID), agent: true},
		{name: strings.Repeat("a", MaxAgentID+1), agent: true, says: "longer than 200 bytes"},
		{name: "", says: "required"},
		{name: "..", says: "URL path segment"},
		{name: "café", says: "only printable ASCII"},
		{name: "a b", says: "only printable ASCII"},
		{name: "a/b", says: "only printable ASCII"},
		{name: "a\tb", says: "only printable ASCII"},
		{name: "a\x7f", says: "only printable ASCII"},
	} {
		check := Account
		if c.agent {
			check = AgentID
		}
		err := check(c.name)
		switch {
		case c.says == "" && err != nil:
			t.Errorf("%q: %v, want valid", c.name, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%q: %v, want an error saying %q", c.name, err, c.says)
		}
	}
}
