package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
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
)

// relayed is a request relayed through one of this replica's sessions.
type relayed struct {
	frames chan *kubesvcv1.ProxyResponse // the agent's answer, in order
	broken chan struct{}                 // closed when the agent overran the window
}

// addRelay registers a relayed request of sess.
func (sess *session) addRelay(id string) *relayed {
	r := &relayed{frames: make(chan *kubesvcv1.ProxyResponse, proxyWindow+2), broken: make(chan struct{})}
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

// deliverProxy hands a part of an answer to its request; parts of requests
// that ended are dropped. It never waits: the window bounds what an agent
// may send ahead (the head, proxyWindow chunks, the end), and an agent
// sending more breaks its request.
func (sess *session) deliverProxy(f *kubesvcv1.ProxyResponse) {
	sess.pendingMu.Lock()
	defer sess.pendingMu.Unlock()
	r := sess.relays[f.GetId()]
	if r == nil {
		return
	}
	select {
	case r.frames <- f:
	default:
		delete(sess.relays, f.GetId())
		close(r.broken)
	}
}

// queue sends m down sess's stream, unless the session or ctx ends first.
func (sess *session) queue(ctx context.Context, m *kubesvcv1.ControlMessage) error {
	select {
	case sess.out <- m:
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
	account := r.PathValue("accountName")
	path := "/" + r.PathValue("path")
	t, refusal := kubeproxy.Parse(path)
	if refusal == nil {
		// Writes are the agent's call (kubernetes.proxy.readOnly).
		refusal = kubeproxy.Check(r.Method, t, true, "")
	}
	if refusal == nil && r.Header.Get("Upgrade") != "" {
		refusal = &kubeproxy.Refusal{Code: http.StatusBadRequest, Message: "connection upgrades are not relayed"}
	}
	if refusal != nil {
		kubeproxy.WriteStatus(w, refusal.Code, refusal.Message)
		return
	}
	agentID := s.localAgentFor(account)
	if agentID == "" {
		var ok bool
		if agentID, ok = s.RouteAccount(account); !ok {
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, proxyMaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			kubeproxy.WriteStatus(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: over the proxy's limit of %d bytes", proxyMaxBody))
		} else {
			kubeproxy.WriteStatus(w, http.StatusBadRequest, fmt.Sprintf("request body: %v", err))
		}
		return
	}
	s.relay(w, r, sess, &kubesvcv1.ProxyRequest{
		Account: account, Method: r.Method, Path: path, Query: r.URL.RawQuery,
		Headers: kubeproxy.RequestHeaders(r.Header), Body: body, Window: proxyWindow,
	})
}

// relay sends req down sess's stream and writes the agent's answer to w as
// it comes, returning the window to the agent as w takes the body.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, sess *session, req *kubesvcv1.ProxyRequest) {
	ctx := r.Context()
	req.Id = newRelayID()
	rl := sess.addRelay(req.Id)
	defer sess.removeRelay(req.Id)
	gone := func() {
		kubeproxy.WriteStatus(w, http.StatusBadGateway, fmt.Sprintf("account %s: agent %s disconnected before answering", req.GetAccount(), sess.agentID))
	}
	if err := sess.queue(ctx, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyRequest{ProxyRequest: req}}); err != nil {
		if ctx.Err() == nil {
			gone()
		}
		return
	}
	// cancel tells the agent to stop (best effort: a session that ends
	// cancels all its requests anyway).
	cancel := func() {
		c, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		_ = sess.queue(c, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyCancel{ProxyCancel: &kubesvcv1.ProxyCancel{Id: req.Id}}})
	}
	timer := time.NewTimer(proxyHeadTimeout)
	defer timer.Stop()
	var head *kubesvcv1.ProxyResponse
	select {
	case head = <-rl.frames:
	case <-rl.broken:
		kubeproxy.WriteStatus(w, http.StatusBadGateway, fmt.Sprintf("agent %s sent more than its window", sess.agentID))
		return
	case <-sess.done:
		gone()
		return
	case <-ctx.Done():
		cancel()
		return
	case <-timer.C:
		cancel()
		kubeproxy.WriteStatus(w, http.StatusGatewayTimeout, fmt.Sprintf("account %s: agent %s did not answer within %s", req.GetAccount(), sess.agentID, proxyHeadTimeout))
		return
	}
	if head.GetStatus() == 0 {
		kubeproxy.WriteStatus(w, http.StatusBadGateway, head.GetError())
		return
	}
	kubeproxy.SetHeaders(w.Header(), head.GetHeaders(), kubeproxy.AllowedResponseHeader)
	w.WriteHeader(int(head.GetStatus()))
	rc := http.NewResponseController(w)
	// The status and headers go out now: a watch's client waits for them
	// before any event comes.
	_ = rc.Flush()
	taken := 0 // chunks written since the last window update
	for f := head; ; {
		if len(f.GetBody()) > 0 {
			if _, err := w.Write(f.GetBody()); err != nil {
				cancel()
				return
			}
			_ = rc.Flush()
			if f != head {
				taken++
			}
			if taken >= proxyWindow/2 {
				if sess.queue(ctx, &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_ProxyWindow{ProxyWindow: &kubesvcv1.ProxyWindow{Id: req.Id, Chunks: uint32(taken)}}}) != nil {
					cancel()
					return
				}
				taken = 0
			}
		}
		if f.GetEnd() {
			if f.GetError() != "" {
				s.log.Warn("relayed answer broke off", "account", req.GetAccount(), "agent", sess.agentID, "path", req.GetPath(), "err", f.GetError())
				panic(http.ErrAbortHandler) // the client sees a broken body, not a short one
			}
			return
		}
		select {
		case f = <-rl.frames:
		case <-rl.broken:
			panic(http.ErrAbortHandler)
		case <-sess.done:
			panic(http.ErrAbortHandler)
		case <-ctx.Done():
			cancel()
			return
		}
	}
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
	base, err := s.replicaURL(replica)
	if err != nil {
		fail(err)
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		fail(fmt.Errorf("control-plane replica %s: base URL %q: %w", replica, base, err))
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(forwardedHeader, s.cfg.ID)
		},
		Transport:     s.forwarder.Transport,
		FlushInterval: -1, // watches: every event at once
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
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

// Unwrap lets http.ResponseController reach the server's writer (Flush).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// status is the code written; 499 (client closed) when none was.
func (r *statusRecorder) status() int {
	if r.code == 0 {
		return 499
	}
	return r.code
}
