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
	// defaultProxyWindow is the window of a request that names none;
	// maxProxyWindow caps what a request may name.
	defaultProxyWindow, maxProxyWindow = 16, 64
	// proxyQueueLen is the length of the session's priority lane.
	proxyQueueLen = 64
)

// proxyCall is one relayed request, from its arrival on the stream.
type proxyCall struct {
	req    *kubesvcv1.ProxyRequest
	ctx    context.Context
	cancel context.CancelFunc
	window chan struct{} // one token per body chunk the agent may send
	// up carries an upgraded request's client bytes (ProxyData), at most
	// a window's worth: a control plane sending more breaks the request.
	up chan []byte
	// refusal, when set, is answered instead of relaying: the id is in
	// use, or the agent relays maxProxied requests already. Such a call
	// is not registered.
	refusal *kubeproxy.Refusal
}

// proxies tracks a session's relayed requests.
type proxies struct {
	wg sync.WaitGroup // the relaying goroutines

	mu    sync.Mutex // guards calls
	calls map[string]*proxyCall
}

// admit registers req at once: the receive loop calls it, so that a
// ProxyCancel right behind the request finds it. ctx is the session's.
func (p *proxies) admit(ctx context.Context, req *kubesvcv1.ProxyRequest) *proxyCall {
	window := int(req.GetWindow())
	if window <= 0 {
		window = defaultProxyWindow
	}
	window = min(window, maxProxyWindow)
	ctx, cancel := context.WithCancel(ctx)
	call := &proxyCall{req: req, ctx: ctx, cancel: cancel, window: make(chan struct{}, window)}
	if req.GetUpgrade() {
		call.up = make(chan []byte, window)
	}
	for range window {
		call.window <- struct{}{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls == nil {
		p.calls = map[string]*proxyCall{}
	}
	switch _, dup := p.calls[req.GetId()]; {
	case dup:
		call.refusal = &kubeproxy.Refusal{Code: http.StatusBadRequest, Message: "request id already in use"}
	case len(p.calls) >= maxProxied:
		call.refusal = &kubeproxy.Refusal{Code: http.StatusTooManyRequests, Message: fmt.Sprintf("this agent relays at most %d requests at once", maxProxied)}
	default:
		p.calls[req.GetId()] = call
	}
	return call
}

// done unregisters call.
func (p *proxies) done(call *proxyCall) {
	call.cancel()
	if call.refusal != nil {
		return
	}
	p.mu.Lock()
	delete(p.calls, call.req.GetId())
	p.mu.Unlock()
}

// startProxy relays call in a goroutine of its own, which proxyLoop waits
// for.
func (s *session) startProxy(call *proxyCall) {
	s.proxies.wg.Go(func() {
		defer s.proxies.done(call)
		if r := call.refusal; r != nil {
			s.proxyRefuse(call.ctx, call.req.GetId(), r.Code, r.Message)
			return
		}
		s.agent.stats.ProxyActive.Add(1)
		defer s.agent.stats.ProxyActive.Add(-1)
		s.relay(call.ctx, call.req, call)
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
	for range min(chunks, maxProxyWindow) {
		select {
		case call.window <- struct{}{}:
		default:
			return // more than it was ever given: ignore the excess
		}
	}
}

// data hands a client's bytes to an upgraded request. It never waits;
// bytes beyond the window end the request.
func (p *proxies) data(id string, b []byte) {
	p.mu.Lock()
	call := p.calls[id]
	p.mu.Unlock()
	if call == nil || call.up == nil {
		return
	}
	select {
	case call.up <- b:
	default:
		call.cancel()
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

// proxySend queues one part of an answer on the priority lane; it fails
// once ctx ends.
func (s *session) proxySend(ctx context.Context, r *kubesvcv1.ProxyResponse) error {
	select {
	case s.prio <- &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_ProxyResponse{ProxyResponse: r}}:
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
		refusal = kubeproxy.Check(req.GetMethod(), t, a.cfg.Proxy.Writes, req.GetUpgrade(), "kubernetes.proxy.readOnly on agent "+a.cfg.ID)
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
			if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && req.GetUpgrade() && resp.StatusCode == http.StatusSwitchingProtocols {
				err = s.tunnel(ctx, id, resp, rwc, call)
			} else {
				err = s.stream(ctx, id, resp, false, call)
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		a.log.Debug("proxied request failed", "account", acct.Name, "method", req.GetMethod(), "path", req.GetPath(), "err", err)
		_ = s.proxySend(ctx, &kubesvcv1.ProxyResponse{Id: id, End: true, Error: fmt.Sprintf("account %s: %v", acct.Name, err)})
	}
}

// tunnel runs an upgraded request: the API server's bytes go down as
// stream does a body, the client's come up (ProxyData) and are written to
// the connection, each chunk's window returned once written. It ends with
// either direction (an exec, attach or port-forward protocol closes the
// whole connection when done).
func (s *session) tunnel(ctx context.Context, id string, resp *http.Response, conn io.ReadWriteCloser, call *proxyCall) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// On the way out: cancel, close (a write blocked towards the API
	// server ends with it), then wait.
	defer wg.Wait()
	defer conn.Close()
	defer cancel()
	// Either direction ending closes the connection, which ends the other.
	context.AfterFunc(ctx, func() { conn.Close() })
	wg.Go(func() {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-call.up:
				if _, err := conn.Write(b); err != nil {
					return
				}
				if s.proxySend(ctx, &kubesvcv1.ProxyResponse{Id: id, UpWindow: 1}) != nil {
					return
				}
			}
		}
	})
	return s.stream(ctx, id, resp, true, call)
}

// stream sends resp's status, headers and body, one window token per
// chunk. A chunk goes as soon as the API server flushed it (a watch event
// is not held back to fill a chunk). upgraded: resp is a 101 whose body
// is the connection.
func (s *session) stream(ctx context.Context, id string, resp *http.Response, upgraded bool, call *proxyCall) error {
	head := &kubesvcv1.ProxyResponse{Id: id, Status: uint32(resp.StatusCode), Headers: kubeproxy.ResponseHeaders(resp.Header, upgraded)}
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

// relayFor returns the account's relay, built the first time and again
// when the account's settings change.
func (a *Agent) relayFor(acct Account) (*kubeproxy.Relay, error) {
	return clientFor(a, a.relays, acct, kubeproxy.NewRelay)
}

// proxyLoop starts the relayed requests the receive loop admitted and,
// when the session ends, waits for them (their contexts end with it).
func (s *session) proxyLoop(ctx context.Context, box *inbox[*proxyCall]) error {
	defer s.proxies.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			// Admitted but not started: nothing to wait for, only to
			// release.
			for _, call := range box.take() {
				s.proxies.done(call)
			}
			return nil
		case <-box.ready:
			for _, call := range box.take() {
				s.startProxy(call)
			}
		}
	}
}
