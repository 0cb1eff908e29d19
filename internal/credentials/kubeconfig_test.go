package credentials

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestCheckKubeconfig(t *testing.T) {
	valid := testKubeconfig("t0ken")
	if err := checkKubeconfig([]byte(valid), ""); err != nil {
		t.Fatalf("valid kubeconfig: %v", err)
	}
	if err := checkKubeconfig([]byte(valid), "ctx2"); err != nil {
		t.Fatalf("valid kubeconfig, context ctx2: %v", err)
	}
	asJSON := `{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://h"}}],` +
		`"contexts":[{"name":"x","context":{"cluster":"c"}}],"current-context":"x"}`
	if err := checkKubeconfig([]byte(asJSON), ""); err != nil {
		t.Fatalf("JSON kubeconfig: %v", err)
	}

	for _, tc := range []struct{ name, data, context, want string }{
		{"empty", "", "", "invalid kubeconfig: empty"},
		{"blank", " \n\t\n", "", "invalid kubeconfig: empty"},
		{"unclosed flow", "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: [abc\n", "", "YAML syntax error at line 5: did not find expected ',' or ']'"},
		{"mapping values", "a: b\n c: d: e\n", "", "YAML syntax error at line 2: mapping values are not allowed in this context"},
		{"tab", "\tx: y\n", "", "YAML syntax error: found character that cannot start any token"},
		{"wrong type", "clusters: abc\n", "", "clusters has the wrong type: a string where []v1.NamedCluster is expected"},
		{"wrong nested type", "users:\n- name: u\n  user:\n    token: [1]\n", "", "users.user.token has the wrong type: an array where string is expected"},
		{"wrong kind", "apiVersion: v1\nkind: Pod\n", "", "apiVersion and kind must be v1 and Config"},
		{"scalar", "just-a-word", "", "not a YAML or JSON document describing a kubeconfig"},
		{"path", "/etc/kubeconfig", "", "use kubeconfigFile for paths"},
		{"base64", base64.StdEncoding.EncodeToString([]byte(valid)), "", "the value is base64-encoded"},
		{"no contexts", "apiVersion: v1\nkind: Config\nclusters: []\n", "", "invalid kubeconfig: defines no contexts"},
		{"other yaml", "foo: bar\n", "", "invalid kubeconfig: defines no contexts"},
		{"no current context", strings.Replace(valid, "current-context: ctx1\n", "", 1), "", "has no current-context, and the account sets no context"},
		{"undefined current context", strings.Replace(valid, "current-context: ctx1", "current-context: nope", 1), "", "current-context names a context that is not defined"},
		{"undefined account context", valid, "prod", `context "prod" (the account's context field) is not defined`},
		{"context without cluster", strings.Replace(valid, "    cluster: c1\n    user: u1\n- name: ctx2", "    user: u1\n- name: ctx2", 1), "", "the context in use names no cluster"},
		{"undefined cluster", strings.Replace(valid, "- name: c1\n", "- name: c0\n", 1), "", "names a cluster that is not defined"},
		{"no server", strings.Replace(valid, "    server: https://127.0.0.1:6443\n", "    insecure-skip-tls-verify: true\n", 1), "", "has no server"},
		{"undefined user", strings.Replace(valid, "- name: u1\n  user:", "- name: u0\n  user:", 1), "", "names a user that is not defined"},
	} {
		err := checkKubeconfig([]byte(tc.data), tc.context)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !errors.Is(err, ErrInvalidKubeconfig) {
			t.Errorf("%s: %v does not wrap ErrInvalidKubeconfig", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestKubeconfigFieldVocabulary(t *testing.T) {
	for _, f := range []string{"clusters", "cluster", "server", "users", "user", "token", "auth-provider", "config", "exec", "env", "current-context", "certificate-authority-data"} {
		if !kubeconfigFields[f] {
			t.Errorf("%q missing from kubeconfigFields", f)
		}
	}
	if knownFieldPath("users.user.SENTINEL") {
		t.Error("knownFieldPath accepted an unknown part")
	}
}
