package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/httpapi"
)

// Forwarding: any replica accepts any request; what needs the agent's
// stream goes over REST to the replica holding the agent's session
// (POST /armory/agent/operations, /armory/agent/{agentId}/commands). A
// forward to a dead replica fails fast (ForwardDialTimeout) with
// ErrAgentGone, so the caller routes again once the agent has reconnected
// elsewhere.

// newForwarder returns the client for peer requests. TCP keepalive probes
// find a peer cut off the network within about 10 s even on a connection
// kept from earlier requests, where the dial timeout does not apply; a
// forwarded operation may otherwise legitimately wait until its deadline.
// peerTLS verifies https peers (nil: Go's defaults).
func newForwarder(dialTimeout time.Duration, peerTLS *tls.Config) *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 4 * time.Second, Interval: 2 * time.Second, Count: 3,
	}}
	return &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     peerTLS,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// newUpgradeForwarder returns a client like f for connection upgrades,
// over HTTP/1.1 only (HTTP/2 has no upgrades, and Go's transport keeps
// only WebSocket's off it by itself, not SPDY's).
func newUpgradeForwarder(f *http.Client) *http.Client {
	t := f.Transport.(*http.Transport).Clone()
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	if t.TLSClientConfig != nil {
		t.TLSClientConfig = t.TLSClientConfig.Clone()
		t.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return &http.Client{Transport: t}
}

// replicaURL returns the REST base URL of replica id: from peer discovery
// when it knows the replica, else what the replica recorded itself, as the
// cluster view has it or, for a replica started since the view's last
// refresh (its agents are in the database already), as the database has it.
func (s *Server) replicaURL(ctx context.Context, id string) (string, error) {
	if s.cfg.Peers != nil {
		for _, p := range s.cfg.Peers.Peers() {
			if p.ID == id && p.BaseURL != "" {
				return p.BaseURL, nil
			}
		}
	}
	if r, ok := s.cluster.replica(id); ok && r.BaseURL != "" {
		return r.BaseURL, nil
	}
	replicas, err := s.store.Replicas(ctx)
	if err != nil {
		return "", fmt.Errorf("control-plane replica %s: read the replicas: %w", id, err)
	}
	for _, r := range replicas {
		if r.ID == id && r.BaseURL != "" {
			return r.BaseURL, nil
		}
	}
	return "", fmt.Errorf("control-plane replica %s is unknown: %w", id, ErrAgentGone)
}

// remoteReplica returns the replica holding agentID when it is not this one.
func (s *Server) remoteReplica(agentID string) (string, error) {
	id, ok := s.cluster.replicaOf(agentID)
	if !ok || id == s.cfg.ID {
		return "", fmt.Errorf("agent %s: %w", agentID, ErrAgentGone)
	}
	return id, nil
}

// forwardMessage is the JSON body of forwarded operations and results: a
// protobuf message in its JSON form, as a string (the swagger's
// OperationRequest and OperationResultRequest).
type forwardMessage struct {
	Operation string `json:"operation,omitempty"`
	Result    string `json:"result,omitempty"`
	Command   string `json:"command,omitempty"`
}

// post sends body to replica's path and decodes the answer into out. A
// replica that cannot be reached, or that no longer holds the agent,
// yields ErrAgentGone.
func (s *Server) post(ctx context.Context, replica, path string, body any, out any) error {
	base, err := s.replicaURL(ctx, replica)
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forwardedHeader, s.cfg.ID)
	if s.cfg.PeerSecret != "" {
		req.Header.Set(peerSecretHeader, s.cfg.PeerSecret)
	}
	resp, err := s.forwarder.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var verr *tls.CertificateVerificationError
		var herr x509.HostnameError
		if errors.As(err, &verr) || errors.As(err, &herr) {
			// A configuration error, not a replica gone: routing again
			// would wait out the deadline and hide it.
			return fmt.Errorf("forward to control-plane replica %s: its REST certificate does not verify (check kubesvc.peerTls.caFile and serverName): %v", replica, err)
		}
		return fmt.Errorf("forward to control-plane replica %s: %v: %w", replica, err, ErrAgentGone)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	switch {
	case resp.StatusCode == http.StatusGatewayTimeout:
		return fmt.Errorf("control-plane replica %s: %s: %w", replica, errorText(data), context.DeadlineExceeded)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode/100 == 5:
		// Not there, stopping, or failing: route again (an agent that
		// already has the operation does not run it twice).
		return fmt.Errorf("control-plane replica %s answered %d: %s: %w", replica, resp.StatusCode, errorText(data), ErrAgentGone)
	case resp.StatusCode == http.StatusUnauthorized:
		hint := "this replica sends no peer secret: is kubesvc.peerSecretFile set on the other replicas only?"
		if s.cfg.PeerSecret != "" {
			hint = "it refused this replica's peer secret: kubesvc.peerSecretFile differs between replicas?"
		}
		return fmt.Errorf("control-plane replica %s answered %d (%s): %s", replica, resp.StatusCode, hint, errorText(data))
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("control-plane replica %s answered %d: %s", replica, resp.StatusCode, errorText(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// forwardedHeader marks a request forwarded by another replica (it names
// it); a forwarded request is never forwarded again.
const forwardedHeader = "X-Kubesvc-Forwarded-By"

func errorText(body []byte) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Error != "" || e.Message != "") {
		return strings.TrimSpace(e.Message + " " + e.Error)
	}
	return strings.TrimSpace(string(body))
}

// forwardProto posts msg (as protojson in field) and decodes the answer's
// field into out.
func (s *Server) forwardProto(ctx context.Context, replica, path string, msg proto.Message, out proto.Message) error {
	b, err := protojson.Marshal(msg)
	if err != nil {
		return err
	}
	var req, resp forwardMessage
	switch msg.(type) {
	case *kubesvcv1.Operation:
		req.Operation = string(b)
	case *kubesvcv1.OperationResult:
		req.Result = string(b)
	default:
		req.Command = string(b)
	}
	if err := s.post(ctx, replica, path, req, &resp); err != nil || out == nil {
		return err
	}
	text := resp.Result
	if text == "" {
		text = resp.Command
	}
	if err := protojson.Unmarshal([]byte(text), out); err != nil {
		return fmt.Errorf("control-plane replica %s: malformed answer: %w", replica, err)
	}
	return nil
}

// sendOperationRemote runs op on an agent connected to another replica.
func (s *Server) sendOperationRemote(ctx context.Context, agentID string, op *kubesvcv1.Operation) (*kubesvcv1.OperationResult, error) {
	replica, err := s.remoteReplica(agentID)
	if err != nil {
		return nil, err
	}
	res := &kubesvcv1.OperationResult{}
	if err := s.forwardProto(ctx, replica, "/armory/agent/operations?agentId="+url.QueryEscape(agentID), op, res); err != nil {
		return nil, err
	}
	return res, nil
}

// sendAccountCommandRemote runs cmd on an agent of another replica: the
// one the cluster view says holds it, else (the view lags: the agent just
// connected there, or moved) the one the database says holds it now.
// Account commands can be sent twice (adding an account replaces it,
// deleting one absent succeeds), so a command the first replica could not
// deliver goes to the second.
func (s *Server) sendAccountCommandRemote(ctx context.Context, agentID string, cmd *kubesvcv1.AccountCommand) (*kubesvcv1.AccountCommandResult, error) {
	forward := func(replica string) (*kubesvcv1.AccountCommandResult, error) {
		res := &kubesvcv1.AccountCommandResult{}
		if err := s.forwardProto(ctx, replica, "/armory/agent/"+url.PathEscape(agentID)+"/commands", cmd, res); err != nil {
			return nil, err
		}
		return res, nil
	}
	tried, err := s.remoteReplica(agentID)
	if err == nil {
		var res *kubesvcv1.AccountCommandResult
		if res, err = forward(tried); err == nil || !errors.Is(err, ErrAgentGone) {
			return res, err
		}
	}
	sessions, serr := s.store.AgentSessions(ctx)
	if serr != nil {
		return nil, err
	}
	for _, sess := range sessions {
		switch {
		case sess.AgentID != agentID || sess.ReplicaID == tried:
		case sess.ReplicaID == s.cfg.ID:
			// Connected here since SendAccountCommand looked.
			return s.sendAccountCommandLocal(ctx, agentID, cmd)
		default:
			return forward(sess.ReplicaID)
		}
	}
	return nil, err
}

// disconnectRemote asks replica to end session sessionID of agentID, in
// the background: the agent has a newer session here.
func (s *Server) disconnectRemote(replica, agentID, sessionID string) {
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body := map[string]any{"clusterDriven": true, "origin": s.cfg.ID, "timestamp": time.Now().UnixMilli(), "sessionId": sessionID}
		if err := s.post(ctx, replica, "/armory/agent/"+url.PathEscape(agentID)+"/disconnect", body, nil); err != nil && !errors.Is(err, ErrAgentGone) {
			s.log.Debug("cluster: ask the previous replica to drop the agent", "replica", replica, "agent", agentID, "err", err)
		}
	})
}

// forwardRead answers a read that needs the agent serving account (what
// it reported of the account lives in the memory of the replica holding
// its session) by asking that replica, and reports whether it answered.
// It answers nothing, with a nil error, when no other replica's agent
// serves the account or the request was forwarded already; and with an
// error when that replica cannot be reached.
func (s *Server) forwardRead(w http.ResponseWriter, r *http.Request, account string) (bool, error) {
	if r.Header.Get(forwardedHeader) != "" {
		return false, nil
	}
	replica := ""
	for _, a := range s.ConnectedAgents() {
		if a.ReplicaID != s.cfg.ID && slices.Contains(a.Accounts, account) {
			replica = a.ReplicaID
			break
		}
	}
	if replica == "" {
		return false, nil
	}
	unreachable := func(err error) (bool, error) {
		s.log.Warn("cluster: forward a read", "replica", replica, "err", err)
		return false, fmt.Errorf("account %q is served through control-plane replica %s, which cannot be reached: %w", account, replica, err)
	}
	base, err := s.replicaURL(r.Context(), replica)
	if err != nil {
		return unreachable(err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+r.URL.RequestURI(), nil)
	if err != nil {
		return unreachable(err)
	}
	req.Header.Set(forwardedHeader, s.cfg.ID)
	if s.cfg.PeerSecret != "" {
		req.Header.Set(peerSecretHeader, s.cfg.PeerSecret)
	}
	resp, err := s.forwarder.Do(req)
	if err != nil {
		if httpapi.Interrupted(w, r) {
			return true, nil // the caller left (nobody to answer), or 503: this replica is stopping
		}
		return unreachable(err)
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true, nil
}
