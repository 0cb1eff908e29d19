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
	base   *url.URL
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
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: server URL: %w", err)
	}
	return &Relay{client: client, base: base}, nil
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
	resp, err := r.client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: %s %s: %w", req.GetMethod(), req.GetPath(), err)
	}
	return resp, nil
}
