package credentials

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker", "encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker"},
		{"encrypted:k8s!ns:spinnaker!k:config!n:kubeconfig-t", "encrypted:k8s!ns:spinnaker!k:config!n:kubeconfig-t"},
		{"/etc/kubesvc/kubeconfigs/prod-eu-west-1.yaml", "/etc/kubesvc/kubeconfigs/prod-eu-west-1.yaml"},
		{"kubeconfig", "kubeconfig"},
		{"/var/lib/kubelet/pods/3f1c2a7e-5b0d-4e8f-9a21-6c7d8e9f0a1b/volumes/kc", "/var/lib/kubelet/pods/3f1c2a7e-5b0d-4e8f-9a21-6c7d8e9f0a1b/volumes/kc"},
		{"C:\\Users\\me\\.kube\\config", "C:\\Users\\me\\.kube\\config"},
		{testKubeconfig("abc"), "<redacted 274 bytes>"},
		{`{"apiVersion":"v1","kind":"Config"}`, "<redacted 35 bytes>"},
		{"apiVersion:v1", "<redacted 13 bytes>"},
		{"token with spaces", "<redacted 17 bytes>"},
		{"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "<redacted 29 bytes>"},
		{"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM", "<redacted 43 bytes>"},
		{"0123456789abcdef0123456789abcdef", "<redacted 32 bytes>"},
		{"line1\nline2", "<redacted 11 bytes>"},
		{"/" + strings.Repeat("a/", 600), "<redacted 1201 bytes>"},
		{"tab\there", "<redacted 8 bytes>"},
		{"\x00\x01", "<redacted 2 bytes>"},
		{"sealed:v1:0123abcd:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "sealed:v1:0123abcd:<48 bytes>"},
		{"sealed:v9:x", "sealed:v9:x"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLooksLikeKubeconfig(t *testing.T) {
	kc := testKubeconfig("abc")
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{kc, true},
		{base64.StdEncoding.EncodeToString([]byte(kc)), true},
		{`{"apiVersion":"v1","kind":"Config"}`, true},
		{"clusters:\n- name: a\nusers:\n- name: b\n", true},
		{`{"current-context":"x"}`, true},
		{"    client-key-data: LS0tLS1CRUdJTi\n", true},
		{"", false},
		{"prod: us-east-1, team: platform", false},
		{"line one\nline two: with a colon", false},
		{"users: alice, bob", false},
		{"kind: Deployment\napiVersion: apps/v1\n", false},
		{"/etc/kubeconfigs/prod.yaml", false},
		{"encryptedFile:k8s!n:kubeconfigs!k:config", false},
		{"V2", false},
	} {
		if got := LooksLikeKubeconfig(tc.in); got != tc.want {
			t.Errorf("LooksLikeKubeconfig(%.40q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFindKubeconfig(t *testing.T) {
	kc := testKubeconfig("abc")
	for _, tc := range []struct {
		in    any
		path  string
		found bool
	}{
		{map[string]any{"kubeConfigContents": kc}, "kubeConfigContents", true},
		// Under a key naming a kubeconfig, anything that is not a path or
		// a reference is content, even a broken kubeconfig.
		{map[string]any{"kubeconfig": "apiVersion: v1\nkind: [oops"}, "kubeconfig", true},
		{map[string]any{"kubeconfig": "/etc/kube/config"}, "", false},
		{map[string]any{"a": []any{"x", map[string]any{"b": kc}}}, "a[1].b", true},
		{map[string]any{"a": map[string]any{"apiVersion": "v1", "kind": "Config", "clusters": []any{}}}, "a", true},
		{map[string]any{"description": "prod: us-east-1\nowner: platform", "customResources": []any{map[string]any{"kubernetesKind": "Foo"}}}, "", false},
		{kc, "", true},
		{float64(3), "", false},
	} {
		path, found := FindKubeconfig(tc.in)
		if path != tc.path || found != tc.found {
			t.Errorf("FindKubeconfig(%.60v) = %q %v, want %q %v", tc.in, path, found, tc.path, tc.found)
		}
	}
}

func TestCheckPathFields(t *testing.T) {
	kc := testKubeconfig("SENTINEL-path-fields")
	for _, tc := range []struct {
		src   Source
		field string
	}{
		{Source{KubeconfigFile: kc}, FieldKubeconfigFile},
		{Source{KubeconfigAgent: kc}, FieldKubeconfigAgent},
		{Source{KubeconfigContents: "encrypted:k8s!n:a!k:b", KubeconfigFile: kc}, FieldKubeconfigFile},
		{Source{KubeconfigFile: "/k", KubeconfigAgent: kc}, FieldKubeconfigAgent},
		{Source{KubeconfigFile: "/k", KubeconfigAgent: "encryptedFile:k8s!n:a!k:b", KubeconfigContents: kc}, ""},
	} {
		err := CheckPathFields(tc.src)
		var e *Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("CheckPathFields: %v, want nil", err)
		case tc.field != "" && (!errors.As(err, &e) || e.Field != tc.field):
			t.Errorf("CheckPathFields: %v, want an *Error naming %s", err, tc.field)
		case err != nil:
			assertNoSecret(t, "CheckPathFields's error", err.Error(), "SENTINEL-path-fields")
		}
	}
}
