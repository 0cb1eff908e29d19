// Package ident holds the rules for the names agents and operators choose
// that end up as cache keys and URL path segments: account names and agent
// ids. Every backend stores keys as ASCII of at most 253 bytes (MySQL's key
// columns are ASCII), and the REST API carries both in paths
// (/agents/kubernetes/accounts/{name}, /armory/agents/{agentId}), so a name
// outside these rules would be accepted at one end and fail, or be dropped
// from the cache, at the other. The agent checks its configuration with
// them, and the control plane checks what agents and the Dynamic Accounts
// API send.
package ident

import (
	"errors"
	"fmt"
)

// MaxAccount is the longest account name, in bytes: a cache key.
const MaxAccount = 253

// MaxAgentID is the longest agent id, in bytes: the control plane keys an
// agent's session by the id followed by "-" and a 19-digit timestamp.
const MaxAgentID = 200

// Account checks an account name: 1 to MaxAccount printable ASCII
// characters, none of them a space or '/', and not "." or "..".
func Account(name string) error { return check(name, MaxAccount) }

// AgentID checks an agent id, as Account but at most MaxAgentID bytes.
func AgentID(id string) error { return check(id, MaxAgentID) }

func check(s string, maxLen int) error {
	switch {
	case s == "":
		return errors.New("required")
	case len(s) > maxLen:
		return fmt.Errorf("longer than %d bytes", maxLen)
	case s == "." || s == "..":
		return fmt.Errorf("%q cannot be a URL path segment", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '/' {
			continue
		}
		found := fmt.Sprintf("%q", c)
		if c >= 0x80 {
			found = "a non-ASCII character"
		}
		return fmt.Errorf("%q: only printable ASCII without spaces or '/' (%s at byte %d)", s, found, i)
	}
	return nil
}
