// Package localenv is the README's run command: it brings up, on one
// machine and with embedded defaults, the whole system: a real local
// Kubernetes cluster (etcd, kube-apiserver, kube-controller-manager from
// internal/testenv) whose admin kubeconfig is written to a fixed, documented
// path, the control plane on an embedded SQLite file, and one agent that
// serves that cluster as the account "local", with Dynamic Accounts enabled. Run blocks until its context
// is cancelled (Ctrl-C) and then stops everything it started.
package localenv
