// Package localenv is the README's run command: it brings up, on one
// machine and with embedded defaults, everything a newcomer needs to see the
// system work. Today that is a real local Kubernetes cluster (etcd,
// kube-apiserver, kube-controller-manager from internal/testenv) whose admin
// kubeconfig is written to a fixed, documented path; the control plane and an
// agent watching that cluster join it as they land. Run blocks until its
// context is cancelled (Ctrl-C) and then stops everything it started.
package localenv
