package controlplane

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// internalRequest marks a request the control plane makes itself through
// the Kubernetes API proxy: no REST client's certificate to check.
type internalRequest struct{}

// KubernetesGet reads path (an API server path such as
// /api/v1/namespaces/ns/pods/p/log) of account's cluster, with query,
// through the agent serving the account, as the Kubernetes API proxy
// relays a client's GET (the same checks, routing to the replica holding
// the agent, and limits), and writes the answer to w as it comes: the API
// server's status and body, or a Kubernetes Status saying why the proxy
// could not relay it (the proxy off on either end, no agent). It returns
// when the answer is complete or ctx ends.
func (s *Server) KubernetesGet(ctx context.Context, account, path string, query url.Values, w http.ResponseWriter) {
	u := &url.URL{Path: "/agents/kubernetes/accounts/" + account + "/proxy" + path, RawQuery: query.Encode()}
	r, err := http.NewRequestWithContext(context.WithValue(ctx, internalRequest{}, true), http.MethodGet, u.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = http.NoBody
	r.URL.Path = u.Path // not re-parsed: the account and path are used as given
	r.SetPathValue("accountName", account)
	r.SetPathValue("path", strings.TrimPrefix(path, "/"))
	s.proxyAPI(w, r)
}

// isInternal tells whether the control plane itself made r (KubernetesGet).
func isInternal(r *http.Request) bool {
	v, _ := r.Context().Value(internalRequest{}).(bool)
	return v
}
