package dynaccounts

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// Writes to several accounts change nothing when one of them cannot be
// written (unknown: 404, being deleted: 409), bad fields get a 400 naming
// them, and a secret reference given on PATCH is kept.
func TestAccountWritesAreAllOrNothing(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	ctx := context.Background()
	want := func(method, path, body string, code int, says string) {
		t.Helper()
		got, msg := e.call(t, method, path, body)
		if got != code || !strings.Contains(msg, says) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", method, path, body, got, msg, code, says)
		}
	}
	row := func(name string) store.Account {
		t.Helper()
		a, err := e.st.GetAccount(ctx, name)
		if err != nil {
			t.Fatalf("account %s: %v", name, err)
		}
		return a
	}
	want("POST", "/armory/accounts", `[{"name": "a", "zoneId": "z1"}, {"name": "b", "zoneId": "z1"}, {"name": "c"}]`, http.StatusAccepted, "")

	want("PATCH", "/armory/accounts", `[{"name": "a", "zoneId": "z2"}, {"name": "nope"}]`, http.StatusNotFound, "nope")
	want("PUT", "/armory/accounts/dynamic", `[{"name": "a", "zoneId": "z2"}, {"name": "nope"}]`, http.StatusNotFound, "nope")
	want("DELETE", "/armory/accounts", `["a", "nope"]`, http.StatusNotFound, "nope")
	if a := row("a"); a.ZoneID != "z1" || a.State != Inactive {
		t.Errorf("a request answered 404 changed account a: zone %q, state %s", a.ZoneID, a.State)
	}

	want("DELETE", "/armory/accounts/c", "", http.StatusAccepted, "")
	want("PATCH", "/armory/accounts", `[{"name": "a", "zoneId": "z2"}, {"name": "c", "state": "ACTIVE"}]`, http.StatusConflict, "c")
	want("PUT", "/armory/accounts/dynamic", `{"name": "c", "zoneId": "z2"}`, http.StatusConflict, "c")
	if a, c := row("a"), row("c"); a.ZoneID != "z1" || c.State != Deleting || c.ZoneID != "" {
		t.Errorf("a request answered 409 changed something: a zone %q, c state %s zone %q", a.ZoneID, c.State, c.ZoneID)
	}

	want("PATCH", "/armory/accounts", `[{"name": "a", "state": 5}]`, http.StatusBadRequest, "[0].state")
	for body, field := range map[string]string{
		`[{"name": ".."}]`:                                   "[0].name",
		`[{"name": "x\u0000y"}]`:                             "[0].name",
		`[{"name": "café"}]`:                                 "only printable ASCII",
		`[{"name": "a b"}]`:                                  "[0].name",
		`[{"name": "x", "zoneId": "  "}]`:                    "[0].zoneId",
		`[{"name": "x", "namespaces": ["ok", "Not Valid"]}]`: "[0].namespaces[1]",
		`[{"name": "x", "kinds": [""]}]`:                     "[0].kinds[0]",
	} {
		want("POST", "/armory/accounts/dynamic", body, http.StatusBadRequest, field)
	}
	want("GET", "/armory/accounts?page=4611686018427387905&limit=2", "", http.StatusBadRequest, "page")
	if a := row("a"); a.State != Inactive {
		t.Errorf("a PATCH with a bad state moved account a to %s", a.State)
	}

	ref := "encryptedFile:k8s!n:creds!k:kubeconfig!ns:spinnaker"
	want("PATCH", "/armory/accounts", `[{"name": "b", "kubeconfigContents": "`+ref+`"}]`, http.StatusAccepted, "")
	if b := row("b"); !strings.Contains(string(b.Definition), ref) {
		t.Errorf("PATCH dropped the secret reference: definition %s, ref %q", b.Definition, b.KubeconfigRef)
	}
}

// A body of the wrong JSON types gets a 400 naming the field and the JSON
// types, never Go's.
func TestDecodeErrorsNameTheFieldInJSONTerms(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/armory/accounts", `{"name": "a"}`, "body: expected array, got object (a JSON array of accounts)"},
		{"POST", "/armory/accounts", `[{"name": "a", "zoneId": 123}]`, "[0].zoneId: expected string, got number"},
		{"POST", "/armory/accounts/dynamic", `{"name": "a", "namespaces": "default"}`, "[0].namespaces: expected array, got string"},
		{"POST", "/armory/accounts/dynamic", `{"name": "a", "customResourceDefinitions": [{"kind": 5}]}`, "[0].customResourceDefinitions.kind: expected string, got number"},
		{"PATCH", "/armory/accounts", `[{"name": "a", "serviceAccount": "yes"}]`, "[0].serviceAccount: expected boolean, got string"},
		{"PATCH", "/armory/accounts", `[{"name": "a",}]`, "body: malformed JSON at byte 15: invalid character '}'"},
		{"DELETE", "/armory/accounts", `"a"`, "body: expected array, got string (a non-empty JSON array of account names)"},
	} {
		code, body := e.call(t, c.method, c.path, c.body)
		var msg struct{ Message string }
		_ = json.Unmarshal([]byte(body), &msg)
		if code != http.StatusBadRequest || !strings.HasPrefix(msg.Message, c.want) || strings.Contains(msg.Message, "Go ") {
			t.Errorf("%s %s %s: %d %s, want 400 saying %q", c.method, c.path, c.body, code, body, c.want)
		}
	}
}

// The accounts endpoints refuse query parameters they do not take, naming
// them and the allowed ones.
func TestAccountsRefuseUnknownQueryParameters(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	for _, c := range []struct{ method, path, body, says string }{
		{"GET", "/armory/accounts?pgae=2", "", `unknown query parameter "pgae"; allowed: page, limit`},
		{"GET", "/armory/accounts?page=1&page=2", "", `query parameter "page" given 2 times`},
		{"POST", "/armory/accounts?dryRun=true", `[{"name": "a"}]`, `unknown query parameter "dryRun"; this endpoint takes none`},
		{"PATCH", "/armory/accounts?x=1", `[{"name": "a"}]`, `"x"`},
		{"DELETE", "/armory/accounts?x=1", `["a"]`, `"x"`},
		{"GET", "/armory/accounts/a?x=1", "", `"x"`},
		{"DELETE", "/armory/accounts/a?force=true", "", `"force"`},
		{"POST", "/armory/accounts/dynamic?x=1", `{"name": "a"}`, `"x"`},
		{"PUT", "/armory/accounts/dynamic?x=1", `{"name": "a"}`, `"x"`},
	} {
		code, body := e.call(t, c.method, c.path, c.body)
		var msg struct{ Message string }
		_ = json.Unmarshal([]byte(body), &msg)
		if code != http.StatusBadRequest || !strings.Contains(msg.Message, c.says) {
			t.Errorf("%s %s: %d %s, want 400 saying %s", c.method, c.path, code, body, c.says)
		}
	}
	if code, body := e.call(t, "GET", "/armory/accounts?page=1&limit=5", ""); code != http.StatusOK {
		t.Errorf("GET /armory/accounts?page=1&limit=5: %d %s", code, body)
	}
	if rows, _ := e.st.ListAccounts(context.Background()); len(rows) != 0 {
		t.Errorf("refused requests stored accounts: %v", rows)
	}
}

// Deleting one unknown account says it is unknown and nothing changed.
func TestDeleteOfAnUnknownAccount(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	code, body := e.call(t, "DELETE", "/armory/accounts/ghost", "")
	var msg struct{ Message string }
	_ = json.Unmarshal([]byte(body), &msg)
	if want := `account "ghost" does not exist; nothing was changed`; code != http.StatusNotFound || msg.Message != want {
		t.Errorf("DELETE /armory/accounts/ghost: %d %s, want 404 saying %q", code, body, want)
	}
}

// POST /armory/accounts (which refuses unknown fields) gives the hints
// /armory/accounts/dynamic (which keeps them) gives.
func TestUnknownFieldHintsAreTheSameOnBothPosts(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	kc := strings.ReplaceAll(strings.ReplaceAll(kubeconfig, "\n", `\n`), `"`, `\"`)
	for _, c := range []struct{ body, says string }{
		{`{"name": "a", "kubeConfigContents": "` + kc + `"}`,
			"[0].kubeConfigContents: unknown field holding kubeconfig contents, which would be stored in plain text; did you mean kubeconfigContents? Field names are case-sensitive"},
		{`{"name": "a", "kubeconfig": "` + kc + `"}`, "[0].kubeconfig: unknown field holding kubeconfig contents, which would be stored in plain text; did you mean kubeconfigContents?"},
	} {
		for _, path := range []string{"/armory/accounts", "/armory/accounts/dynamic"} {
			code, body := e.call(t, "POST", path, "["+c.body+"]")
			var msg struct{ Message string }
			_ = json.Unmarshal([]byte(body), &msg)
			if code != http.StatusBadRequest || msg.Message != c.says {
				t.Errorf("POST %s: %d %s, want 400 saying %q", path, code, body, c.says)
			}
			assertClean(t, "the answer", body)
		}
	}
	// Refused on POST /armory/accounts only: unknown fields, with a hint
	// when the name is a known one in another case.
	for body, says := range map[string]string{
		`{"name": "a", "kubeConfigContents": "encryptedFile:k8s!n:c!k:k"}`: "[0].kubeConfigContents: unknown field; did you mean kubeconfigContents? Field names are case-sensitive",
		`{"name": "a", "ZoneId": "z"}`:                                     "[0].ZoneId: unknown field; did you mean zoneId? Field names are case-sensitive",
		`{"name": "a", "KubeconfigFile": "/k"}`:                            "[0].KubeconfigFile: unknown field; did you mean kubeconfigFile? Field names are case-sensitive",
		`{"name": "a", "colour": "blue"}`:                                  "[0].colour: unknown field",
	} {
		code, resp := e.call(t, "POST", "/armory/accounts", "["+body+"]")
		var msg struct{ Message string }
		_ = json.Unmarshal([]byte(resp), &msg)
		if code != http.StatusBadRequest || msg.Message != says {
			t.Errorf("POST /armory/accounts %s: %d %s, want 400 saying %q", body, code, resp, says)
		}
	}
}

// A PATCH asking for the state an account is in changes nothing, not even
// the row's version and time: a client repeating it must not keep an
// orphaned account from being noticed (the orphan grace runs from the
// row's last change).
func TestPatchToTheSameStateWritesNothing(t *testing.T) {
	t.Parallel()
	e := newLeakEnv(t)
	ctx := context.Background()
	if code, msg := e.call(t, "POST", "/armory/accounts", `[{"name": "same", "zoneId": "z1"}]`); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, msg)
	}
	a, err := e.st.GetAccount(ctx, "same")
	if err != nil {
		t.Fatal(err)
	}
	a.State = Active
	if _, err = e.st.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a, err = e.st.GetAccount(ctx, "same"); err != nil {
		t.Fatal(err)
	}
	if code, msg := e.call(t, "PATCH", "/armory/accounts", `[{"name": "same", "state": "ACTIVE", "zoneId": "z1"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH: %d %s", code, msg)
	}
	if b, err := e.st.GetAccount(ctx, "same"); err != nil || b.Version != a.Version || !b.UpdatedAt.Equal(a.UpdatedAt) {
		t.Errorf("a PATCH to the same state rewrote the row: version %d -> %d (%v)", a.Version, b.Version, err)
	}
	if code, msg := e.call(t, "PATCH", "/armory/accounts", `[{"name": "same", "state": "INACTIVE"}]`); code != http.StatusAccepted {
		t.Fatalf("PATCH INACTIVE: %d %s", code, msg)
	}
	if b, _ := e.st.GetAccount(ctx, "same"); b.State != ToDeactivate {
		t.Errorf("PATCH INACTIVE: state %s, want %s", b.State, ToDeactivate)
	}
}
