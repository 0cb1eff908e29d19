package controlplane

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/kubesvc/kubesvc/internal/kubeproxy"
)

// KubernetesGet reads path (an API server path such as
// /api/v1/namespaces/ns/pods/p/log) of account's cluster, with query,
// through the agent serving the account, as the Kubernetes API proxy
// relays a client's GET (the same checks, routing to the replica holding
// the agent, and limits), and writes the answer to w as it comes: the API
// server's status and body, or a Kubernetes Status saying why the proxy
// could not relay it (the proxy off on either end, no agent). The read is
// made on behalf of the REST request from: its client certificate must be
// one the proxy admits (kubesvc.proxy.x509.filters), as if it had asked
// the proxy itself. It is counted in kubesvc_controlplane_proxy_requests_total
// like a client's. It returns when the answer is complete or ctx ends.
func (s *Server) KubernetesGet(ctx context.Context, from *http.Request, account, path string, query url.Values, w http.ResponseWriter) {
	u := &url.URL{Path: "/agents/kubernetes/accounts/" + account + "/proxy" + path, RawQuery: query.Encode()}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		kubeproxy.WriteStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	r.Body = http.NoBody
	r.TLS = from.TLS
	r.URL.Path = u.Path // not re-parsed: the account and path are used as given
	r.SetPathValue("accountName", account)
	r.SetPathValue("path", strings.TrimPrefix(path, "/"))
	s.proxyAPI(w, r)
}
