// Package e2e holds end-to-end tests: real kube-apiservers from
// internal/testenv, a real control plane on a real SQLite file, real agents,
// real gRPC over loopback sockets, and the REST API read over HTTP. It has
// no non-test code besides this comment.
package e2e
