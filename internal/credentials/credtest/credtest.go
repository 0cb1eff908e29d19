// Package credtest holds test fixtures for code that handles kubeconfigs:
// TEST FIXTURES, imported by tests only.
package credtest

// Kubeconfig returns a valid kubeconfig: cluster c1 at
// https://127.0.0.1:6443, context ctx1 (current), user u1 with token. Tests
// of leaks put a sentinel in the token and look for it where it must not
// be.
func Kubeconfig(token string) string {
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
current-context: ctx1
users:
- name: u1
  user:
    token: ` + token + "\n"
}
