// Package testenv runs real Kubernetes control planes (etcd + kube-apiserver,
// optionally kube-controller-manager) as child processes on free loopback
// ports, for tests and for the local run.
//
// Each Cluster gets its own temporary directory holding a fresh PKI (a CA, a
// serving certificate for 127.0.0.1, an admin client certificate in the
// system:masters group and a service-account key pair), the etcd data
// directory, the process logs and an admin kubeconfig file. Several clusters
// can run in one process; they share nothing.
//
// The binaries are not downloaded: scripts/k8s-binaries.sh builds them from
// the Go module proxy into a per-version cache directory, and BinDir finds
// that directory the same way the script does. When a binary is missing the
// error names the command that builds it.
//
// Child processes are started in their own process group with a parent-death
// signal, so they die with the test binary even when it panics or is killed;
// Stop and the testing helper's cleanup kill them and remove the directory.
package testenv
