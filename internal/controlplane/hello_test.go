package controlplane

import (
	"strings"
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// An agent's hello is refused, naming the field, when an id or account name
// could not be a cache key or a URL path segment: accepted, its changes
// would be dropped from the cache (or fail on MySQL's ASCII key columns).
func TestHelloNamesAreKeys(t *testing.T) {
	acct := func(names ...string) []*kubesvcv1.AccountInfo {
		var out []*kubesvcv1.AccountInfo
		for _, n := range names {
			out = append(out, &kubesvcv1.AccountInfo{Name: n})
		}
		return out
	}
	for _, c := range []struct {
		hello *kubesvcv1.Hello
		says  string // "" when valid
	}{
		{hello: &kubesvcv1.Hello{AgentId: "agent-1", Version: "1.0", Accounts: acct("prod", "dev_2")}},
		{hello: &kubesvcv1.Hello{AgentId: ""}, says: "hello.agent_id: required"},
		{hello: &kubesvcv1.Hello{AgentId: strings.Repeat("a", 201)}, says: "hello.agent_id: longer than 200 bytes"},
		{hello: &kubesvcv1.Hello{AgentId: "a/b"}, says: "hello.agent_id: \"a/b\": only printable ASCII"},
		{hello: &kubesvcv1.Hello{AgentId: "a", Version: strings.Repeat("v", 254)}, says: "hello.version: longer than 253 bytes"},
		{hello: &kubesvcv1.Hello{AgentId: "a", Accounts: acct("ok", "café")}, says: "hello.accounts[1].name: \"café\": only printable ASCII"},
		{hello: &kubesvcv1.Hello{AgentId: "a", Accounts: acct("ok", "ok")}, says: "hello.accounts[1].name: duplicate"},
	} {
		err := validateHello(c.hello)
		switch {
		case c.says == "" && err != nil:
			t.Errorf("%v: %v, want valid", c.hello, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%v: %v, want an error saying %q", c.hello, err, c.says)
		}
	}
}
