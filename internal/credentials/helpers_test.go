package credentials

import (
	"encoding/base64"
	"strings"
	"testing"
)

// testKubeconfig returns a valid kubeconfig whose user has token.
func testKubeconfig(token string) string {
	return `apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: ctx1
  context:
    cluster: c1
    user: u1
- name: ctx2
  context:
    cluster: c1
    user: u1
current-context: ctx1
users:
- name: u1
  user:
    token: ` + token + "\n"
}

// assertNoSecret fails t if s contains any of secrets, or their base64.
func assertNoSecret(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(sec))) {
			t.Errorf("%s contains a secret: %s", what, s)
		}
	}
}
