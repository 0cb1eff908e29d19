package controlplane

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/store"
)

func (s *Server) clusterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /armory/clouddrivers", httpapi.Query(s.getClouddrivers))
	mux.HandleFunc("GET /armory/clouddrivers/{clouddriverId}", httpapi.Query(s.getClouddriver))
	mux.HandleFunc("POST /armory/agent/operations", s.peerOnly(s.postOperation))
	mux.HandleFunc("POST /armory/agent/operationresults", s.peerOnly(s.postOperationResult))
	mux.HandleFunc("POST /armory/agent/{agentId}/commands", s.peerOnly(httpapi.Query(s.postCommand)))
	mux.HandleFunc("POST /armory/agent/{agentId}/disconnect", s.peerOnly(httpapi.Query(s.postDisconnect)))
	mux.HandleFunc("POST /armory/agent/assignments", httpapi.Query(s.postAssignments))
	s.healthRoutes(mux)
}

// peerSecretHeader carries Config.PeerSecret on requests between replicas.
const peerSecretHeader = "X-Kubesvc-Peer-Secret"

// peerOnly guards an endpoint that reaches an agent's stream directly:
// with a PeerSecret configured, only a request presenting it (another
// replica) gets through; others get 401.
func (s *Server) peerOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.PeerSecret != "" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get(peerSecretHeader)), []byte(s.cfg.PeerSecret)) != 1 {
			s.logRefusedPeer(r)
			httpapi.WriteError(w, http.StatusUnauthorized, "%s: this endpoint is for control-plane replicas (kubesvc.peerSecretFile)", peerSecretHeader)
			return
		}
		h(w, r)
	}
}

// refusedPeerLogEvery is the least time between two warnings about
// requests refused from one address for their peer secret.
const refusedPeerLogEvery = time.Minute

// refusedPeers rate-limits logRefusedPeer, per remote host.
type refusedPeers struct {
	mu     sync.Mutex
	logged map[string]time.Time // host -> last warned
	missed map[string]int       // host -> refused since, not warned
}

// logRefusedPeer warns that a request to a peer-only endpoint was refused
// for its peer secret, naming who sent it: another replica doing so has a
// different kubesvc.peerSecretFile, which otherwise shows only in the
// forwarding replica's task errors. At most one line a minute per host.
func (s *Server) logRefusedPeer(r *http.Request) {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	p := &s.refused
	p.mu.Lock()
	if p.logged == nil {
		p.logged, p.missed = map[string]time.Time{}, map[string]int{}
	}
	if last, ok := p.logged[host]; ok && time.Since(last) < refusedPeerLogEvery {
		p.missed[host]++
		p.mu.Unlock()
		return
	}
	if len(p.logged) > 1000 { // bounded: forget everyone
		p.logged, p.missed = map[string]time.Time{}, map[string]int{}
	}
	missed := p.missed[host]
	p.logged[host], p.missed[host] = time.Now(), 0
	p.mu.Unlock()
	why := "without the peer secret"
	if r.Header.Get(peerSecretHeader) != "" {
		why = "with another peer secret"
	}
	s.log.Warn("refused a request to an endpoint for control-plane replicas "+why+
		": if it comes from another replica, kubesvc.peerSecretFile differs between replicas",
		"remote", r.RemoteAddr, "forwardedBy", r.Header.Get(forwardedHeader), "path", r.URL.Path,
		"refusedSinceLastWarning", missed)
}

// clouddriver is ClouddriverInstance of the REST contract, with the spread
// of agents and accounts over the replicas.
type clouddriver struct {
	BaseURL     string `json:"baseUrl"`
	ID          string `json:"id"`
	LastUpdated string `json:"lastUpdated"`
	Ready       bool   `json:"ready"`
	Agents      int    `json:"agents"`
	Accounts    int    `json:"accounts"`
}

// clouddrivers merges peer discovery with the replicas' own heartbeats:
// discovery says where a replica is (and, from EndpointSlices, whether
// Kubernetes thinks it ready), its heartbeats whether it is alive. A
// discovered replica with no heartbeat row (never started, or removed as
// silent) is not ready, unless heartbeats are off (kubesvc.heartbeat.enabled):
// then discovery alone says which are ready.
func (s *Server) clouddrivers() []clouddriver {
	agents, accounts := map[string]int{}, map[string]int{}
	s.cluster.mu.Lock()
	for _, sess := range s.cluster.sessions {
		agents[sess.ReplicaID]++
	}
	for _, a := range s.cluster.assignments {
		accounts[a.ReplicaID]++
	}
	byID := map[string]clouddriver{}
	for id, r := range s.cluster.replicas {
		timeout := s.cfg.ReplicaTimeout
		if r.Timeout > 0 {
			timeout = r.Timeout // its own, as the reaper judges it
		}
		byID[id] = clouddriver{ID: id, BaseURL: r.BaseURL, LastUpdated: formatUpdated(r.HeartbeatAt),
			Ready: s.cfg.NoHeartbeat || time.Since(r.HeartbeatAt) < timeout}
	}
	gone := make(map[string]time.Time, len(s.cluster.gone))
	for id, at := range s.cluster.gone {
		gone[id] = at
	}
	s.cluster.mu.Unlock()
	if s.cfg.Peers != nil {
		discovered := map[string]bool{}
		for _, p := range s.cfg.Peers.Peers() {
			discovered[p.ID] = true
			c, beats := byID[p.ID]
			c.ID, c.BaseURL = p.ID, p.BaseURL
			if beats {
				c.Ready = c.Ready && p.Ready
			} else {
				c.Ready = p.Ready && s.cfg.NoHeartbeat
				// A replica removed as silent (or gone) was last alive at
				// its last heartbeat, not when discovery last looked.
				c.LastUpdated = formatUpdated(p.LastUpdated)
				if at, ok := gone[p.ID]; ok {
					c.LastUpdated = formatUpdated(at)
				}
			}
			byID[p.ID] = c
		}
		// Without heartbeats, a recorded replica discovery no longer
		// lists is gone (nothing reaps its row).
		if s.cfg.NoHeartbeat {
			for id, c := range byID {
				if !discovered[id] {
					c.Ready = false
					byID[id] = c
				}
			}
		}
	}
	self := byID[s.cfg.ID]
	self.ID, self.Ready = s.cfg.ID, true
	if self.BaseURL == "" {
		self.BaseURL = s.cfg.BaseURL
	}
	if self.LastUpdated == "" {
		self.LastUpdated = formatUpdated(time.Now())
	}
	byID[s.cfg.ID] = self
	out := make([]clouddriver, 0, len(byID))
	for id, c := range byID {
		c.Agents, c.Accounts = agents[id], accounts[id]
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// formatUpdated formats a lastUpdated in UTC to the millisecond, the
// precision of the recorded heartbeats, whatever its source.
func formatUpdated(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
}

func (s *Server) getClouddrivers(w http.ResponseWriter, _ *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, s.clouddrivers())
}

func (s *Server) getClouddriver(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("clouddriverId")
	for _, c := range s.clouddrivers() {
		if c.ID == id {
			httpapi.WriteJSON(w, http.StatusOK, c)
			return
		}
	}
	httpapi.WriteError(w, http.StatusNotFound, "control-plane replica %q is not part of the cluster", id)
}

// decodeBody decodes r's JSON body (at most limit bytes) into v; it
// answers 400 naming the field and reports false when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", httpapi.DecodeError("", err))
		return false
	}
	return true
}

func readForward(w http.ResponseWriter, r *http.Request) (forwardMessage, bool) {
	var body forwardMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&body); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "body: %v", err)
		return body, false
	}
	return body, true
}

// postOperation runs an operation on an agent of this replica and answers
// its result: the holder's side of operation forwarding.
func (s *Server) postOperation(w http.ResponseWriter, r *http.Request) {
	body, ok := readForward(w, r)
	if !ok {
		return
	}
	op := &kubesvcv1.Operation{}
	if err := protojson.Unmarshal([]byte(body.Operation), op); err != nil || op.GetId() == "" || op.GetAccount() == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "operation: a JSON Operation with id and account is required")
		return
	}
	agentID := r.URL.Query().Get("agentId")
	if agentID == "" {
		agentID = s.localAgentFor(op.GetAccount())
	}
	ctx := r.Context()
	if op.GetDeadlineMs() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(op.GetDeadlineMs()))
		defer cancel()
	}
	res, err := s.sendOperationLocal(ctx, agentID, op)
	if err != nil {
		s.writeForwardError(w, err)
		return
	}
	// The asking replica waits for the cache to reflect the objects the
	// result names, but it only sees this replica's commits by reading
	// the shared database again now and then: answer once they are in
	// (this replica's commits wake the wait at once). A wait that fails is
	// the asker's to report.
	for _, o := range res.GetCached().GetObjects() {
		key := store.ObjectKey{Account: op.GetAccount(), Group: o.GetGroup(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
		if s.WaitCached(ctx, key, o.GetResourceVersion()) != nil {
			break
		}
	}
	b, _ := protojson.Marshal(res)
	httpapi.WriteJSON(w, http.StatusOK, forwardMessage{Result: string(b)})
}

// postOperationResult delivers a result to the operation waiting for it on
// this replica, else records it through the UnclaimedResults hook.
func (s *Server) postOperationResult(w http.ResponseWriter, r *http.Request) {
	body, ok := readForward(w, r)
	if !ok {
		return
	}
	res := &kubesvcv1.OperationResult{}
	if err := protojson.Unmarshal([]byte(body.Result), res); err != nil || res.GetId() == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "result: a JSON OperationResult with id is required")
		return
	}
	for _, sess := range s.registry.sessions() {
		if sess.deliverOperation(res) {
			httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": res.GetId(), "deliveredTo": "waiting operation"})
			return
		}
	}
	if s.unclaimed != nil {
		if err := s.unclaimed.HandleResult(r.Context(), "", res); err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "result %s not recorded: %v", res.GetId(), err)
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": res.GetId(), "deliveredTo": "history"})
}

// postCommand runs an account command on an agent of this replica.
func (s *Server) postCommand(w http.ResponseWriter, r *http.Request) {
	var body forwardMessage
	if !decodeBody(w, r, 64<<20, &body) {
		return
	}
	cmd := &kubesvcv1.AccountCommand{}
	if err := protojson.Unmarshal([]byte(body.Command), cmd); err != nil || cmd.GetId() == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "command: a JSON AccountCommand with id is required")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	res, err := s.sendAccountCommandLocal(ctx, r.PathValue("agentId"), cmd)
	if err != nil {
		s.writeForwardError(w, err)
		return
	}
	b, _ := protojson.Marshal(res)
	httpapi.WriteJSON(w, http.StatusOK, forwardMessage{Command: string(b)})
}

// writeForwardError answers a forwarded request that failed: 404 when the
// agent is not (or no longer) here, 503 when this replica is stopping (the
// caller routes again: the agent will reconnect elsewhere), 504 past the
// operation's deadline.
func (s *Server) writeForwardError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrAgentGone):
		httpapi.WriteError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		httpapi.WriteError(w, http.StatusGatewayTimeout, "%v", err)
	case errors.Is(err, context.Canceled):
		httpapi.WriteError(w, http.StatusServiceUnavailable, "control-plane replica %s is stopping: %v", s.cfg.ID, err)
	default:
		httpapi.WriteError(w, http.StatusBadGateway, "%v", err)
	}
}

// postDisconnect ends this replica's session of an agent (DisconnectRequest).
func (s *Server) postDisconnect(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClusterDriven bool   `json:"clusterDriven"`
		Origin        string `json:"origin"`
		Timestamp     int64  `json:"timestamp"`
		// SessionID (ours) names the session to end: a replica that took
		// the agent over names the one it replaced, never a newer one.
		SessionID string `json:"sessionId"`
	}
	if r.ContentLength != 0 && !decodeBody(w, r, 1<<20, &req) {
		return
	}
	id := r.PathValue("agentId")
	sess, err := s.session(id)
	if err != nil {
		httpapi.WriteError(w, http.StatusNotFound, "agent %q is not connected to control-plane replica %s", id, s.cfg.ID)
		return
	}
	// A cluster-driven request names the replaced session, or when the
	// agent's newer session started; a session started after that is the
	// newer one itself.
	if req.SessionID != "" && req.SessionID != sess.id ||
		req.SessionID == "" && req.ClusterDriven && req.Timestamp > 0 && sess.connectedAt.UnixMilli() > req.Timestamp {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"agentId": id, "disconnected": false, "reason": "the session here is newer"})
		return
	}
	s.log.Info("cluster: agent disconnected on request", "agent", id, "origin", req.Origin, "clusterDriven", req.ClusterDriven)
	sess.cancel(errDisconnected)
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"agentId": id, "disconnected": true})
}

var errDisconnected = errors.New("disconnected on request (POST /armory/agent/{agentId}/disconnect)")

// postAssignments frees the named accounts' assignments: each goes again to
// the least busy connected agent serving it.
func (s *Server) postAssignments(w http.ResponseWriter, r *http.Request) {
	var names []string
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	if err := dec.Decode(&names); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v (a non-empty JSON array of account names is required)", httpapi.DecodeError("", err))
		return
	}
	if len(names) == 0 || dec.More() {
		httpapi.WriteError(w, http.StatusBadRequest, "body: a non-empty JSON array of account names is required")
		return
	}
	for i, n := range names {
		if n == "" {
			httpapi.WriteError(w, http.StatusBadRequest, "body[%d]: empty name", i)
			return
		}
	}
	unknown, err := s.unknownAccounts(r.Context(), names)
	if err != nil {
		s.log.Error("cluster: read accounts", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the accounts")
		return
	}
	if len(unknown) > 0 {
		httpapi.WriteError(w, http.StatusBadRequest, "body: unknown accounts (nothing was changed): %s; "+
			"an account is one a connected agent serves, or has an assignment, or is a dynamic account", strings.Join(unknown, ", "))
		return
	}
	if err := s.store.ReleaseAssignments(r.Context(), "", names); err != nil {
		s.log.Error("cluster: release assignments", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot release the assignments")
		return
	}
	s.pokeAssigner()
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"accounts": names})
}

// unknownAccounts returns those of names that are no account of the
// cluster, as the database has it: none of its connected agents (on any
// replica) serves it, it has no assignment, and it is no dynamic account.
func (s *Server) unknownAccounts(ctx context.Context, names []string) ([]string, error) {
	known := map[string]bool{}
	for _, a := range s.ConnectedAgents() {
		for _, n := range a.Accounts {
			known[n] = true
		}
	}
	recorded, err := s.ClusterAgents(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range recorded {
		for _, n := range a.Accounts {
			known[n] = true
		}
	}
	assignments, err := s.store.Assignments(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range assignments {
		known[a.Account] = true
	}
	var unknown []string
	for _, n := range names {
		if known[n] {
			continue
		}
		switch _, err := s.store.GetAccount(ctx, n); {
		case errors.Is(err, store.ErrNotFound):
			unknown = append(unknown, n)
		case err != nil:
			return nil, err
		}
	}
	return unknown, nil
}
