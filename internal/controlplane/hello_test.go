package controlplane

import (
	"strings"
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// An agent's hello is refused, naming the field, when its id could not be
// a cache key or a URL path segment; accounts of such names are dropped
// from it (an agent of an older release), the others served.
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

func TestHelloAccountsOfBadNamesAreDropped(t *testing.T) {
	h := &kubesvcv1.Hello{AgentId: "a", Accounts: []*kubesvcv1.AccountInfo{{Name: "prod"}, {Name: "café"}, {Name: "prod eu"}, {Name: "dev"}}}
	refused := dropBadAccountNames(h)
	var kept []string
	for _, a := range h.GetAccounts() {
		kept = append(kept, a.GetName())
	}
	if strings.Join(kept, ",") != "prod,dev" || len(refused) != 2 || !strings.Contains(refused[0], `"café"`) || !strings.Contains(refused[1], `"prod eu"`) {
		t.Errorf("kept %v, refused %v; want prod and dev kept, café and \"prod eu\" refused with their reasons", kept, refused)
	}
}
