package kubeproxy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"k8s.io/client-go/rest"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// Relay sends relayed requests to one API server with one account's
// credentials.
type Relay struct {
	client *http.Client
	// upgrades is client over HTTP/1.1 only: Go's transport keeps only
	// WebSocket upgrades off HTTP/2 by itself, not SPDY's.
	upgrades *http.Client
	base     *url.URL
}

// NewRelay returns the relay of the cluster cfg reaches. The client has no
// overall timeout: a watch lasts until its client or the API server ends
// it (the request's context).
func NewRelay(cfg *rest.Config) (*Relay, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 0
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: client: %w", err)
	}
	h1 := rest.CopyConfig(cfg)
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"} // client-go then leaves HTTP/2 out
	upgrades, err := rest.HTTPClientFor(h1)
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: client: %w", err)
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: server URL: %w", err)
	}
	return &Relay{client: client, upgrades: upgrades, base: base}, nil
}

// Do sends req to the API server. The caller checked it (Parse, Check) and
// closes the answer's body. An upgrade goes over HTTP/1.1 (Go's transport
// does not offer HTTP/2 for it); answered 101, the body is the connection,
// an io.ReadWriteCloser.
func (r *Relay) Do(ctx context.Context, req *kubesvcv1.ProxyRequest) (*http.Response, error) {
	u := *r.base
	// A server URL may carry a path prefix (an API server behind a
	// gateway): the relayed path goes under it.
	u.Path = strings.TrimSuffix(u.Path, "/") + req.GetPath()
	u.RawPath = ""
	u.RawQuery = req.GetQuery()
	var body *bytes.Reader
	if len(req.GetBody()) > 0 {
		body = bytes.NewReader(req.GetBody())
	}
	var hreq *http.Request
	var err error
	if body != nil {
		hreq, err = http.NewRequestWithContext(ctx, req.GetMethod(), u.String(), body)
	} else {
		hreq, err = http.NewRequestWithContext(ctx, req.GetMethod(), u.String(), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: request: %w", err)
	}
	SetHeaders(hreq.Header, req.GetHeaders(), func(name string) bool { return AllowedRequestHeader(name, req.GetUpgrade()) })
	client := r.client
	if req.GetUpgrade() {
		// Ours, not the client's: a Connection header naming other
		// headers would have a proxy in front of the API server drop
		// them (the account's impersonation, say).
		hreq.Header.Set("Connection", "Upgrade")
		client = r.upgrades
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: %s %s: %w", req.GetMethod(), req.GetPath(), err)
	}
	return resp, nil
}
