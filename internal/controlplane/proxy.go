package controlplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/certs"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/kubeproxy"
)

// The Kubernetes API proxy, control-plane side:
// /agents/kubernetes/accounts/{account}/proxy/<API path> relays the request
// down the stream of the agent serving the account (through the replica
// holding it), and streams the answer back as the agent sends it. A
// client-go or kubectl configured with that URL as its server talks to the
// account's cluster, with the agent's credentials and within what the agent
// relays (kubernetes.proxy.*); see internal/kubeproxy for what is refused.

const (
	// proxyMaxBody caps a relayed request's body (the API server's own
	// limit for most requests is 3 MiB too).
	proxyMaxBody = 3 << 20
	// proxyWindow is how many body chunks (32 KiB each) an agent may send
	// ahead of the client reading them.
	proxyWindow = 16
	// proxyHeadTimeout bounds the wait for the agent's first answer (the
	// API server's status and headers).
	proxyHeadTimeout = 30 * time.Second
	// proxyMaxHead caps a ProxyRequest without its body (path, query,
	// headers): with the body, it stays well under the agent's 4 MiB
	// message limit (a larger one would end the agent's whole session).
	proxyMaxHead = 256 << 10
	// proxyCancelWait bounds queueing a ProxyCancel behind the stream's
	// other messages.
	proxyCancelWait = 10 * time.Second
	// maxRelayed bounds the requests this replica relays at once (each
	// may hold a body of up to proxyMaxBody); more are answered 429.
	maxRelayed = 512
)

// relayed is a request relayed through one of this replica's sessions.
type relayed struct {
	frames chan *kubesvcv1.ProxyResponse // the agent's answer, in order
	broken chan struct{}                 // closed when the agent overran the window
	// up holds a token per ProxyData chunk an upgraded request may send
	// to the agent; the agent returns them (ProxyResponse.up_window).
	up chan struct{}
}

// addRelay registers a relayed request of sess.
func (sess *session) addRelay(id string) *relayed {
	r := &relayed{frames: make(chan *kubesvcv1.ProxyResponse, proxyWindow+2), broken: make(chan struct{}), up: make(chan struct{}, proxyWindow)}
	for range proxyWindow {
		r.up <- struct{}{}
	}
	sess.pendingMu.Lock()
	sess.relays[id] = r
	sess.pendingMu.Unlock()
	return r
}

func (sess *session) removeRelay(id string) {
	sess.pendingMu.Lock()
	delete(sess.relays, id)
	sess.pendingMu.Unlock()
}

// deliverProxy hands a part of an answer to its request and reports
// whether the request was there to take it. It never waits: the window
// bounds what an agent may send ahead (the head, proxyWindow chunks, the
// end), and an agent sending more breaks its request.
func (sess *session) deliverProxy(f *kubesvcv1.ProxyResponse) bool {
	sess.pendingMu.Lock()
	defer sess.pendingMu.Unlock()
	r := sess.relays[f.GetId()]
	if r == nil {
		return false
	}
	for range min(f.GetUpWindow(), proxyWindow) {
		select {
		case r.up <- struct{}{}:
		default: // more than was ever taken: ignore the excess
		}
	}
	if f.GetUpWindow() > 0 && len(f.GetBody()) == 0 && !f.GetEnd() && f.GetStatus() == 0 {
		return true // only a window: not a part of the answer
	}
	select {
	case r.frames <- f:
		return true
	default:
		delete(sess.relays, f.GetId())
		close(r.broken)
		return false
	}
}

func proxyCancel(id string) *kubesvcv1.ControlMessage {
	return &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyCancel{ProxyCancel: &kubesvcv1.ProxyCancel{Id: id}}}
}

// queue sends m down sess's stream, unless the session or ctx ends first.
func (sess *session) queue(ctx context.Context, m *kubesvcv1.ControlMessage) error {
	return sess.queueOn(ctx, sess.out, m)
}

// queueOn is queue on one of sess's send queues.
func (sess *session) queueOn(ctx context.Context, q chan<- *kubesvcv1.ControlMessage, m *kubesvcv1.ControlMessage) error {
	select {
	case q <- m:
		return nil
	case <-sess.done:
		return fmt.Errorf("agent %s: %w", sess.agentID, ErrAgentGone)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// proxyAPI serves the Kubernetes API proxy.
func (s *Server) proxyAPI(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { s.metrics.proxied.WithLabelValues(strconv.Itoa(rec.status())).Inc() }()
	s.serveProxy(rec, r)
}

func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Proxy {
		kubeproxy.WriteStatus(w, http.StatusNotFound, "the Kubernetes API proxy is off on this control plane (kubesvc.proxy.enabled)")
		return
	}
	if msg := s.proxyClientRefused(r); msg != "" {
		kubeproxy.WriteStatus(w, http.StatusForbidden, msg)
		return
	}
	account := r.PathValue("accountName")
	path := "/" + r.PathValue("path")
	upgrade := kubeproxy.IsUpgrade(r.Header)
	t, refusal := kubeproxy.Parse(path)
	if refusal == nil {
		// Writes are the agent's call (kubernetes.proxy.readOnly).
		refusal = kubeproxy.Check(r.Method, t, true, upgrade, "")
	}
	if refusal == nil && upgrade && r.ProtoMajor != 1 {
		refusal = &kubeproxy.Refusal{Code: http.StatusBadRequest, Message: "connection upgrades need HTTP/1.1"}
	}
	if refusal != nil {
		kubeproxy.WriteStatus(w, refusal.Code, refusal.Message)
		return
	}
	// An agent of this replica first; else the one the cluster assigned
	// the account to (a lookup); else any agent serving it (a scan).
	agentID := s.localAgentFor(account)
	if agentID == "" {
		if a, ok := s.cluster.assignment(account); ok {
			agentID = a.AgentID
		} else if agentID, ok = s.RouteAccount(account); !ok {
			kubeproxy.WriteStatus(w, http.StatusNotFound, fmt.Sprintf("account %q: no connected agent serves it", account))
			return
		}
	}
	sess, err := s.session(agentID)
	if err != nil {
		if by := r.Header.Get(forwardedHeader); by != "" {
			kubeproxy.WriteStatus(w, http.StatusServiceUnavailable, fmt.Sprintf("account %q: agent %s is not connected to control-plane replica %s (forwarded by %s)", account, agentID, s.cfg.ID, by))
			return
		}
		s.forwardProxy(w, r, account, agentID)
		return
	}
	switch {
	case !sess.proxyRelays:
		kubeproxy.WriteStatus(w, http.StatusForbidden, fmt.Sprintf("agent %s does not relay Kubernetes API requests (kubernetes.proxy.enabled)", sess.agentID))
		return
	case !sess.proxyWrites && (upgrade || !kubeproxy.IsRead(r.Method)):
		if r := kubeproxy.Check(r.Method, t, false, upgrade, fmt.Sprintf("kubernetes.proxy.readOnly on agent %s", sess.agentID)); r != nil {
			kubeproxy.WriteStatus(w, r.Code, r.Message)
			return
		}
	}
	req := &kubesvcv1.ProxyRequest{Account: account, Method: r.Method, Path: path, Query: r.URL.RawQuery,
		Headers: kubeproxy.RequestHeaders(r.Header, upgrade), Window: proxyWindow, Upgrade: upgrade}
	// Its text must encode (protobuf strings are UTF-8; a request that
	// does not encode would end the agent's stream), and the request must
	// stay well under the agent's message limit whatever the body.
	if field := kubeproxy.InvalidUTF8(req); field != "" {
		kubeproxy.WriteStatus(w, http.StatusBadRequest, field+": not valid UTF-8")
		return
	}
	if n := proto.Size(req); n > proxyMaxHead {
		kubeproxy.WriteStatus(w, http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("path, query and headers: %d bytes, over the proxy's limit of %d", n, proxyMaxHead))
		return
	}
	select {
	case s.relaying <- struct{}{}:
		defer func() { <-s.relaying }()
	default:
		kubeproxy.WriteStatus(w, http.StatusTooManyRequests, fmt.Sprintf("control-plane replica %s relays %d requests already", s.cfg.ID, maxRelayed))
		return
	}
	// A body trickling in must not hold the slot for ever.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(proxyHeadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, proxyMaxBody))
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			kubeproxy.WriteStatus(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: over the proxy's limit of %d bytes", proxyMaxBody))
		} else {
			kubeproxy.WriteStatus(w, http.StatusBadRequest, fmt.Sprintf("request body: %v", err))
		}
		return
	}
	req.Body = body
	s.relay(w, r, sess, req)
}

// proxyClientRefused says why the client may not use the proxy
// (kubesvc.proxy.x509.filters), "" when it may.
func (s *Server) proxyClientRefused(r *http.Request) string {
	if s.cfg.ProxySubjects == nil {
		return ""
	}
	if s.cfg.PeerSecret != "" && r.Header.Get(forwardedHeader) != "" &&
		subtle.ConstantTimeCompare([]byte(r.Header.Get(peerSecretHeader)), []byte(s.cfg.PeerSecret)) == 1 {
		return "" // forwarded by a replica, which checked its client
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return "the Kubernetes API proxy needs a client certificate (kubesvc.proxy.x509.filters)"
	}
	if subject := certs.Subject(r.TLS.VerifiedChains[0][0]); !s.cfg.ProxySubjects.Allows(subject) {
		s.log.Warn("Kubernetes API proxy refused a client certificate", "subject", subject)
		return fmt.Sprintf("client certificate %q may not use the Kubernetes API proxy (kubesvc.proxy.x509.filters)", subject)
	}
	return ""
}

// relay sends req down sess's stream and writes the agent's answer to w as
// it comes, returning the window to the agent as w takes the body.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, sess *session, req *kubesvcv1.ProxyRequest) {
	ctx := r.Context()
	req.Id = newRelayID()
	rl := sess.addRelay(req.Id)
	defer sess.removeRelay(req.Id)
	if err := sess.queue(ctx, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyRequest{ProxyRequest: req}}); err != nil {
		switch {
		case httpapi.Stopping(ctx):
			kubeproxy.WriteStatus(w, http.StatusServiceUnavailable, httpapi.ShuttingDown)
		case ctx.Err() == nil:
			kubeproxy.WriteStatus(w, http.StatusBadGateway, fmt.Sprintf("account %s: agent %s disconnected before answering", req.GetAccount(), sess.agentID))
		}
		return
	}
	// cancel tells the agent to stop. Best effort: a session that ends
	// ends its requests, and parts of a request that arrive after this
	// one ended are answered with another cancel (inbox.receive).
	cancel := func() {
		c, stop := context.WithTimeout(context.Background(), proxyCancelWait)
		defer stop()
		_ = sess.queue(c, proxyCancel(req.Id))
	}
	// next waits for the agent's next part. A part already delivered is
	// taken even when the session ended since (its answer may be whole).
	timer := time.NewTimer(proxyHeadTimeout)
	defer timer.Stop()
	// Without a part, it returns the status to answer (0: the client
	// left; 503: this replica is stopping) and why.
	next := func(timeout <-chan time.Time) (*kubesvcv1.ProxyResponse, int, string) {
		select {
		case f := <-rl.frames:
			return f, 0, ""
		default:
		}
		select {
		case f := <-rl.frames:
			return f, 0, ""
		case <-rl.broken:
			cancel()
			return nil, http.StatusBadGateway, fmt.Sprintf("agent %s sent more than its window", sess.agentID)
		case <-sess.done:
			select {
			case f := <-rl.frames:
				return f, 0, ""
			default:
			}
			return nil, http.StatusBadGateway, fmt.Sprintf("agent %s disconnected before answering", sess.agentID)
		case <-ctx.Done():
			cancel()
			if httpapi.Stopping(ctx) {
				return nil, http.StatusServiceUnavailable, httpapi.ShuttingDown
			}
			return nil, 0, ""
		case <-timeout:
			cancel()
			return nil, http.StatusGatewayTimeout, fmt.Sprintf("agent %s did not answer within %s", sess.agentID, proxyHeadTimeout)
		}
	}
	head, code, failed := next(timer.C)
	if head == nil {
		if code != 0 {
			kubeproxy.WriteStatus(w, code, fmt.Sprintf("account %s: %s", req.GetAccount(), failed))
		}
		return
	}
	if head.GetStatus() == 0 {
		kubeproxy.WriteStatus(w, http.StatusBadGateway, head.GetError())
		return
	}
	if req.GetUpgrade() && head.GetStatus() == http.StatusSwitchingProtocols {
		// The protocol switched to must be the one the client asked for:
		// anything else would leave the client speaking the wrong one.
		h := http.Header{}
		kubeproxy.SetHeaders(h, head.GetHeaders(), nil)
		if got, asked := h.Get("Upgrade"), r.Header.Get("Upgrade"); !strings.EqualFold(got, asked) {
			cancel()
			kubeproxy.WriteStatus(w, http.StatusBadGateway, fmt.Sprintf("account %s: the API server switched to %q, not the %q asked for", req.GetAccount(), got, asked))
			return
		}
		s.tunnel(w, r, sess, rl, req, head, cancel)
		return
	}
	kubeproxy.SetHeaders(w.Header(), head.GetHeaders(), func(n string) bool { return kubeproxy.AllowedResponseHeader(n, false) })
	w.WriteHeader(int(head.GetStatus()))
	rc := http.NewResponseController(w)
	// The status and headers go out now: a watch's client waits for them
	// before any event comes.
	_ = rc.Flush()
	// Past the head, a failure can only break the body off: the client
	// must see a broken answer, not a short one that looks whole.
	abort := func(why string) {
		s.log.Warn("relayed answer broke off", "account", req.GetAccount(), "agent", sess.agentID, "path", req.GetPath(), "err", why)
		panic(http.ErrAbortHandler)
	}
	taken := 0 // chunks written since the last window update
	for f := head; ; {
		if len(f.GetBody()) > 0 {
			// A client that stops reading holds the agent's request (and
			// one of its slots): after ProxyStall the write fails.
			// The deadline covers this write only: on HTTP/2 it is a timer
			// that would reset a quiet watch's stream later.
			_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.ProxyStall))
			_, err := w.Write(f.GetBody())
			if err == nil {
				err = rc.Flush()
			}
			_ = rc.SetWriteDeadline(time.Time{})
			if err != nil {
				cancel() // the client left, or stopped reading
				return
			}
			if f != head {
				taken++
			}
			if taken >= proxyWindow/2 && !f.GetEnd() {
				if err := sess.queue(ctx, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyWindow{ProxyWindow: &kubesvcv1.ProxyWindow{Id: req.Id, Chunks: uint32(taken)}}}); err != nil {
					if ctx.Err() != nil && !httpapi.Stopping(ctx) {
						cancel()
						return // the client left
					}
					cancel()
					abort(err.Error()) // the session ended, or this replica is stopping
				}
				taken = 0
			}
		}
		if f.GetEnd() {
			if f.GetError() != "" {
				abort(f.GetError())
			}
			return
		}
		if f, code, failed = next(nil); f == nil {
			if code == 0 {
				return // the client left
			}
			abort(failed) // a body cut off by this replica stopping too: broken, not short
		}
	}
}

// tunnel runs an upgraded request (exec, attach, port-forward) once the
// agent relayed the API server's 101: it takes the client's connection
// over, writes the 101, then moves bytes both ways: the agent's parts to
// the client (returning their window), the client's bytes to the agent
// as ProxyData (within the window the agent returns). Either side ending
// ends both; the client leaving cancels the agent's request.
func (s *Server) tunnel(w http.ResponseWriter, r *http.Request, sess *session, rl *relayed, req *kubesvcv1.ProxyRequest, head *kubesvcv1.ProxyResponse, cancel func()) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		cancel()
		kubeproxy.WriteStatus(w, http.StatusInternalServerError, fmt.Sprintf("connection upgrade: %v", err))
		return
	}
	defer conn.Close()
	if rec, ok := w.(*statusRecorder); ok {
		rec.switched() // for the metrics
	}
	h := http.Header{}
	kubeproxy.SetHeaders(h, head.GetHeaders(), func(n string) bool { return kubeproxy.AllowedResponseHeader(n, true) })
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		cancel()
		return
	}
	// The request's context ends with the server (its base context):
	// the hijacked connection is outside net/http's shutdown, not ours.
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	context.AfterFunc(ctx, func() { conn.Close() })
	var wg sync.WaitGroup
	defer wg.Wait()
	// Up: the client's bytes (brw holds what came with the request).
	wg.Go(func() {
		defer stop()
		buf := make([]byte, 32<<10)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				select {
				case <-rl.up:
				case <-ctx.Done():
					return
				case <-sess.done:
					return
				}
				data := &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyData{ProxyData: &kubesvcv1.ProxyData{Id: req.Id, Data: bytes.Clone(buf[:n])}}}
				if sess.queueOn(ctx, sess.bulk, data) != nil {
					return
				}
			}
			if err != nil {
				return // the client closed its connection (or down ended)
			}
		}
	})
	// Down: the API server's bytes, until the agent ends, the session
	// ends (parts already delivered first) or the client's side ends.
	taken := 0
	for {
		var f *kubesvcv1.ProxyResponse
		select {
		case f = <-rl.frames:
		default:
			select {
			case f = <-rl.frames:
			case <-rl.broken:
			case <-sess.done:
			case <-ctx.Done():
			}
		}
		if f == nil {
			break
		}
		if len(f.GetBody()) > 0 {
			_ = conn.SetWriteDeadline(time.Now().Add(10 * s.cfg.ProxyStall))
			if _, err := conn.Write(f.GetBody()); err != nil {
				break
			}
			taken++
			if taken >= proxyWindow/2 && !f.GetEnd() {
				if sess.queue(ctx, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyWindow{ProxyWindow: &kubesvcv1.ProxyWindow{Id: req.Id, Chunks: uint32(taken)}}}) != nil {
					break
				}
				taken = 0
			}
		}
		if f.GetEnd() {
			break
		}
	}
	stop()
	conn.Close() // ends the up pump's read
	cancel()     // the agent's request, if still running
}

// forwardProxy relays the request to the replica holding agentID's
// session, streaming its answer back.
func (s *Server) forwardProxy(w http.ResponseWriter, r *http.Request, account, agentID string) {
	fail := func(err error) {
		kubeproxy.WriteStatus(w, http.StatusServiceUnavailable, fmt.Sprintf("account %s: %v", account, err))
	}
	replica, err := s.remoteReplica(agentID)
	if err != nil {
		fail(err)
		return
	}
	base, err := s.replicaURL(r.Context(), replica)
	if err != nil {
		fail(err)
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		fail(fmt.Errorf("control-plane replica %s: base URL %q: %w", replica, base, err))
		return
	}
	transport := s.forwarder.Transport
	if kubeproxy.IsUpgrade(r.Header) {
		transport = s.upgradeForwarder.Transport
	}
	rp := &httputil.ReverseProxy{
		// A 101 is written through the hijacked connection, past the
		// recorder: count it here.
		ModifyResponse: func(resp *http.Response) error {
			if rec, ok := w.(*statusRecorder); ok && resp.StatusCode == http.StatusSwitchingProtocols {
				rec.switched()
			}
			return nil
		},
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(forwardedHeader, s.cfg.ID)
			pr.Out.Header.Del(peerSecretHeader)
			if s.cfg.PeerSecret != "" {
				pr.Out.Header.Set(peerSecretHeader, s.cfg.PeerSecret)
			}
		},
		Transport:     transport,
		FlushInterval: -1, // watches: every event at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if httpapi.Stopping(r.Context()) {
				kubeproxy.WriteStatus(w, http.StatusServiceUnavailable, httpapi.ShuttingDown)
				return
			}
			if r.Context().Err() != nil {
				return // the client left: nothing to answer (counted 499)
			}
			kubeproxy.WriteStatus(w, http.StatusBadGateway, fmt.Sprintf("account %s: forward to control-plane replica %s: %v", account, replica, err))
		},
	}
	rp.ServeHTTP(w, r)
}

func newRelayID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusRecorder remembers the status written, for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// switched records a 101 written through the hijacked connection, past
// the recorder, in it and in every recorder below it.
func (r *statusRecorder) switched() {
	var w http.ResponseWriter = r
	for w != nil {
		if rec, ok := w.(*statusRecorder); ok {
			rec.code = http.StatusSwitchingProtocols
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// Unwrap lets http.ResponseController reach the server's writer (Flush).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// status is the code written; 499 (client closed) when none was.
func (r *statusRecorder) status() int {
	if r.code == 0 {
		return 499
	}
	return r.code
}
