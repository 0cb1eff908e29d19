package dynaccounts

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// What the agent's own configuration refuses in an account (a kind both
// cached and omitted, a role with whitespace, a permission other than READ
// or WRITE: internal/accountrules) is a
// 400 naming the item and field on every write, and nothing is stored.
func TestDefinitionsTheAgentConfigRefuses(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	ctx := context.Background()
	if code, msg := e.call(t, "POST", "/armory/accounts", `[{"name": "held", "serviceAccount": true}]`); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, msg)
	}
	for _, c := range []struct{ item, says string }{
		{`{"name": "y", "serviceAccount": true, "kinds": ["deployment"], "omitKinds": ["Deployment"]}`,
			`[1].omitKinds[0]: kind "Deployment" is also listed in kinds`},
		{`{"name": "y", "serviceAccount": true, "permissions": {"READ": ["ok"], "WRITE": ["a b"]}}`,
			`[1].permissions.WRITE[0]: role "a b" must be non-empty and contain no whitespace`},
		{`{"name": "y", "serviceAccount": true, "permissions": {"READ": [""]}}`,
			`[1].permissions.READ[0]: role "" must be non-empty`},
		{`{"name": "y", "serviceAccount": true, "permissions": {"READ": ["ok"], "execute": ["ci"], "REED": ["ops"]}}`,
			`[1].permissions.REED: permission must be READ or WRITE (or EXECUTE, CREATE)`},
	} {
		body := `[{"name": "fine", "serviceAccount": true}, ` + c.item + `]`
		for _, path := range []string{"/armory/accounts", "/armory/accounts/dynamic"} {
			if code, msg := e.call(t, "POST", path, body); code != http.StatusBadRequest || !strings.Contains(unquote(msg), c.says) {
				t.Errorf("POST %s %s: %d %s, want 400 saying %s", path, c.item, code, msg, c.says)
			}
		}
		put := `[{"name": "held", "serviceAccount": true}, ` + strings.Replace(c.item, `"y"`, `"held2"`, 1) + `]`
		if code, msg := e.call(t, "PUT", "/armory/accounts/dynamic", put); code != http.StatusBadRequest || !strings.Contains(unquote(msg), c.says) {
			t.Errorf("PUT %s: %d %s, want 400 saying %s", c.item, code, msg, c.says)
		}
	}
	for _, name := range []string{"fine", "y"} {
		if _, err := e.st.GetAccount(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account %s stored by a refused request (%v)", name, err)
		}
	}
}

// An account without credentials is taken by POST (Armory's migration
// flow gives them with the PATCH that activates it), but a PATCH ACTIVE
// or a PUT that would send it to agents without any is a 400 naming
// kubeconfigFile, and changes nothing.
func TestActivatingWithoutCredentialsIsRefused(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	ctx := context.Background()
	want := func(method, path, body string, code int, says string) {
		t.Helper()
		if got, msg := e.call(t, method, path, body); got != code || !strings.Contains(unquote(msg), says) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", method, path, body, got, msg, code, says)
		}
	}
	state := func(name string) string {
		t.Helper()
		a, err := e.st.GetAccount(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return a.State
	}
	want("POST", "/armory/accounts", `[{"name": "w"}, {"name": "v"}]`, http.StatusAccepted, "")
	want("PATCH", "/armory/accounts", `[{"name": "v", "state": "INACTIVE"}, {"name": "w", "state": "ACTIVE"}]`, http.StatusBadRequest,
		`[1].kubeconfigFile: required to activate account "w"`)
	want("PATCH", "/armory/accounts", `[{"name": "w"}]`, http.StatusBadRequest, `[0].kubeconfigFile`)
	if s := state("w"); s != Inactive {
		t.Errorf("a refused PATCH moved w to %s", s)
	}
	// The credentials in the PATCH that activates it: taken.
	want("PATCH", "/armory/accounts", `[{"name": "w", "state": "ACTIVE", "kubeconfigAgent": "/etc/kube/w.yaml"}]`, http.StatusAccepted, "")
	if s := state("w"); s != ToMigrate {
		t.Errorf("PATCH ACTIVE with credentials: w is %s, want %s", s, ToMigrate)
	}
	// A definition without credentials replaces an INACTIVE account, not
	// one on its way to agents.
	want("PUT", "/armory/accounts/dynamic", `{"name": "v", "zoneId": "z"}`, http.StatusAccepted, "")
	want("PUT", "/armory/accounts/dynamic", `{"name": "w", "zoneId": "z"}`, http.StatusBadRequest, `[0].kubeconfigFile: required: account "w" is TO_MIGRATE`)
	if a, _ := e.st.GetAccount(ctx, "w"); a.ZoneID != "" || !hasCredentials(a) {
		t.Errorf("a refused PUT changed w: zone %q, credentials %v", a.ZoneID, hasCredentials(a))
	}
}

// unquote undoes JSON's escaping of quotes in an error body.
func unquote(body string) string { return strings.ReplaceAll(body, `\"`, `"`) }

// The answers' bodies are the contract's (plugin-rest-api.swagger.json):
// the POSTs answer an array, PUT /armory/accounts/dynamic an object.
func TestWriteAnswersFollowTheContract(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/armory/accounts", `[{"name": "a"}]`, "[]"},
		{"POST", "/armory/accounts/dynamic", `{"name": "b"}`, "[]"},
		{"PUT", "/armory/accounts/dynamic", `{"name": "b", "zoneId": "z"}`, "{}"},
	} {
		if code, body := e.call(t, c.method, c.path, c.body); code != http.StatusAccepted || strings.TrimSpace(body) != c.want {
			t.Errorf("%s %s: %d %q, want 202 %s", c.method, c.path, code, body, c.want)
		}
	}
}
