// Package kubeproxy holds what both ends of the Kubernetes API proxy agree
// on. The control plane serves the proxy on its REST port
// (/agents/kubernetes/accounts/{account}/proxy/...): it relays each request
// down the stream of the agent holding the account, and the agent sends it
// to the account's API server with the account's own credentials,
// streaming the answer back (see api/kubesvc/v1: ProxyRequest).
//
// Both ends check every request (Parse, then Check): the control plane to
// refuse early with a clear answer, the agent because it holds the
// credentials and is the authority on what leaves its cluster. Secrets and
// service account tokens are never relayed (Secret data never leaves the
// agent); neither are connection upgrades (exec, attach, port-forward) nor
// the API server's own proxy. Refusals are Kubernetes Status objects, so
// kubectl and client-go show them as they would the API server's.
//
// Relay sends a request to an API server; RequestHeaders and
// ResponseHeaders decide which headers cross the proxy.
package kubeproxy
