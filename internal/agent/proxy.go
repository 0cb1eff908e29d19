package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/kubeproxy"
)

// The Kubernetes API proxy, agent side: the control plane sends a
// ProxyRequest down the stream; the agent checks it (kubeproxy.Check, with
// its own settings: it holds the credentials), sends it to the account's
// API server and streams the answer back in chunks, each allowed by the
// request's window, which the control plane refills as its client reads.

// ProxyConfig is what the agent relays (kubernetes.proxy.*).
type ProxyConfig struct {
	// Enabled relays requests; off, every request is refused.
	Enabled bool
	// Writes relays more than reads (kubernetes.proxy.readOnly: false).
	Writes bool
}

const (
	// maxProxied bounds the requests relayed at once; more are answered
	// 429 (watches count while they last).
	maxProxied = 256
	// proxyChunk is the most body one ProxyResponse carries.
	proxyChunk = 32 << 10
	// defaultProxyWindow is the window of a request that names none.
	defaultProxyWindow = 16
)

// proxyCall is one relayed request in flight.
type proxyCall struct {
	cancel context.CancelFunc
	window chan struct{} // one token per body chunk the agent may send
}

// proxies tracks a session's relayed requests.
type proxies struct {
	wg sync.WaitGroup // the relaying goroutines

	mu    sync.Mutex // guards calls
	calls map[string]*proxyCall
}

// start relays req in a goroutine of its own, which wait waits for.
func (s *session) startProxy(ctx context.Context, req *kubesvcv1.ProxyRequest) {
	p := &s.proxies
	window := int(req.GetWindow())
	if window <= 0 {
		window = defaultProxyWindow
	}
	ctx, cancel := context.WithCancel(ctx)
	call := &proxyCall{cancel: cancel, window: make(chan struct{}, window)}
	for range window {
		call.window <- struct{}{}
	}
	p.mu.Lock()
	if p.calls == nil {
		p.calls = map[string]*proxyCall{}
	}
	busy := len(p.calls) >= maxProxied
	_, dup := p.calls[req.GetId()]
	if !busy && !dup {
		p.calls[req.GetId()] = call
	}
	p.mu.Unlock()
	p.wg.Go(func() {
		defer cancel()
		switch {
		case dup:
			// Not registered: the running request keeps its id.
			s.proxyRefuse(ctx, req.GetId(), http.StatusBadRequest, "request id already in use")
			return
		case busy:
			s.proxyRefuse(ctx, req.GetId(), http.StatusTooManyRequests, fmt.Sprintf("this agent relays at most %d requests at once", maxProxied))
			return
		}
		s.agent.stats.ProxyActive.Add(1)
		defer func() {
			p.mu.Lock()
			delete(p.calls, req.GetId())
			p.mu.Unlock()
			s.agent.stats.ProxyActive.Add(-1)
		}()
		s.relay(ctx, req, call)
	})
}

// refill adds chunks to a request's window.
func (p *proxies) refill(id string, chunks uint32) {
	p.mu.Lock()
	call := p.calls[id]
	p.mu.Unlock()
	if call == nil {
		return
	}
	for range chunks {
		select {
		case call.window <- struct{}{}:
		default:
			return // more than it was ever given: ignore the excess
		}
	}
}

// cancel ends a relayed request early.
func (p *proxies) cancel(id string) {
	p.mu.Lock()
	call := p.calls[id]
	p.mu.Unlock()
	if call != nil {
		call.cancel()
	}
}

// proxySend queues one part of an answer; it fails once ctx ends.
func (s *session) proxySend(ctx context.Context, r *kubesvcv1.ProxyResponse) error {
	select {
	case s.out <- item{msg: &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_ProxyResponse{ProxyResponse: r}}}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// proxyRefuse answers a request with a Kubernetes Status.
func (s *session) proxyRefuse(ctx context.Context, id string, code int, msg string) {
	s.agent.stats.ProxyRefused.Add(1)
	_ = s.proxySend(ctx, &kubesvcv1.ProxyResponse{
		Id: id, Status: uint32(code), End: true, Body: kubeproxy.Status(code, msg),
		Headers: []*kubesvcv1.Header{{Name: "Content-Type", Values: []string{"application/json"}}},
	})
}

// relay runs one request: check, send, stream the answer.
func (s *session) relay(ctx context.Context, req *kubesvcv1.ProxyRequest, call *proxyCall) {
	a := s.agent
	id := req.GetId()
	if !a.cfg.Proxy.Enabled {
		s.proxyRefuse(ctx, id, http.StatusForbidden, fmt.Sprintf("agent %s does not relay Kubernetes API requests (kubernetes.proxy.enabled)", a.cfg.ID))
		return
	}
	t, refusal := kubeproxy.Parse(req.GetPath())
	if refusal == nil {
		refusal = kubeproxy.Check(req.GetMethod(), t, a.cfg.Proxy.Writes, "kubernetes.proxy.readOnly on agent "+a.cfg.ID)
	}
	if refusal != nil {
		s.proxyRefuse(ctx, id, refusal.Code, refusal.Message)
		return
	}
	acct, ok := a.snapshot()[req.GetAccount()]
	if !ok {
		s.proxyRefuse(ctx, id, http.StatusNotFound, fmt.Sprintf("account %q is not served by agent %s", req.GetAccount(), a.cfg.ID))
		return
	}
	r, err := a.relayFor(acct)
	if err == nil {
		var resp *http.Response
		if resp, err = r.Do(ctx, req); err == nil {
			defer resp.Body.Close()
			// A read blocked on a quiet watch ends when the request is
			// cancelled or the session ends.
			stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
			defer stop()
			a.stats.Proxied.Add(1)
			err = s.stream(ctx, id, resp, call)
		}
	}
	if err != nil && ctx.Err() == nil {
		a.log.Debug("proxied request failed", "account", acct.Name, "method", req.GetMethod(), "path", req.GetPath(), "err", err)
		_ = s.proxySend(ctx, &kubesvcv1.ProxyResponse{Id: id, End: true, Error: fmt.Sprintf("account %s: %v", acct.Name, err)})
	}
}

// stream sends resp's status, headers and body, one window token per
// chunk. A chunk goes as soon as the API server flushed it (a watch event
// is not held back to fill a chunk).
func (s *session) stream(ctx context.Context, id string, resp *http.Response, call *proxyCall) error {
	head := &kubesvcv1.ProxyResponse{Id: id, Status: uint32(resp.StatusCode), Headers: kubeproxy.ResponseHeaders(resp.Header)}
	if err := s.proxySend(ctx, head); err != nil {
		return err
	}
	buf := make([]byte, proxyChunk)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			select {
			case <-call.window:
			case <-ctx.Done():
				return ctx.Err()
			}
			// A copy of what was read (a watch event is a few hundred
			// bytes): the message waits in the send queue.
			if err := s.proxySend(ctx, &kubesvcv1.ProxyResponse{Id: id, Body: bytes.Clone(buf[:n])}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return s.proxySend(ctx, &kubesvcv1.ProxyResponse{Id: id, End: true})
		}
		if err != nil {
			return fmt.Errorf("read the answer: %w", err)
		}
	}
}

// cachedRelay is the relay of one account's settings.
type cachedRelay struct {
	acct  Account
	relay *kubeproxy.Relay
}

// relayFor returns the account's relay, built the first time and again
// when the account's settings change.
func (a *Agent) relayFor(acct Account) (*kubeproxy.Relay, error) {
	a.mu.Lock()
	c, ok := a.relays[acct.Name]
	a.mu.Unlock()
	if ok && c.acct.equal(acct) {
		return c.relay, nil
	}
	cfg, err := restConfig(acct)
	if err != nil {
		return nil, err
	}
	r, err := kubeproxy.NewRelay(cfg)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.relays[acct.Name] = cachedRelay{acct: acct, relay: r}
	a.mu.Unlock()
	return r, nil
}

// proxyLoop starts the relayed requests the receive loop queued and, when
// the session ends, waits for them (their contexts end with it).
func (s *session) proxyLoop(ctx context.Context, box *inbox[*kubesvcv1.ProxyRequest]) error {
	defer s.proxies.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-box.ready:
			for _, req := range box.take() {
				s.startProxy(ctx, req)
			}
		}
	}
}
