package credentials

import (
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
