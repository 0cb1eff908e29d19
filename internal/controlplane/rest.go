package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/labels"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/accountview"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/manifests"
	"github.com/kubesvc/kubesvc/internal/store"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// /health is the overall status, as Spring's: DOWN, with the reason,
	// while the replica cannot reach its database (see healthRoutes).
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		if ready, reason := s.db.readiness(time.Now(), s.cfg.UnreadyAfter); !ready {
			httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "DOWN", "reason": reason})
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "UP"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metricsReg, promhttp.HandlerOpts{}))
	// The endpoints take no query parameters unless named (httpapi.Query).
	mux.HandleFunc("GET /armory/agents", httpapi.Query(s.getAgents))
	mux.HandleFunc("GET /armory/agents/{agentId}", httpapi.Query(s.getAgent))
	mux.HandleFunc("GET /agents/kubernetes/accounts/{accountName}", httpapi.Query(s.getAgentAccount))
	mux.HandleFunc("GET /agents/kubernetes/accounts/{accountName}/namespaces", httpapi.Query(s.getNamespaces))
	mux.HandleFunc("/agents/kubernetes/accounts/{accountName}/proxy/{path...}", s.proxyAPI)
	mux.HandleFunc("GET /cache/objects", s.listObjects)
	mux.HandleFunc("GET /cache/objects/{account}/{kind}/{name}", s.getObject)
	manifests.New(s.store, s, s.log.With("component", "manifests")).Routes(mux)
	s.clusterRoutes(mux)
	for _, e := range s.extensions {
		e.Routes(mux)
	}
	// Unknown paths and methods get JSON errors too (the proxy's paths
	// take every method and answer Kubernetes Status objects themselves).
	return manifests.EmptyLocations(s.instrument(httpapi.MuxErrors(mux)))
}

// instrument counts and times every request next (the mux) serves by the
// route that serves it (kubesvc_controlplane_http_requests_total,
// _http_request_duration_seconds), also when the handler aborts.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		defer func() {
			p := recover()
			code := rec.status()
			if p != nil && rec.code == 0 {
				code = http.StatusInternalServerError // a handler that gave up, not a client gone
			}
			// The mux set r.Pattern: a registered pattern, or for its own
			// redirects the path it redirects to, which is not a label.
			route := r.Pattern
			switch {
			case code >= 300 && code < 400 && code != http.StatusNotModified:
				route = "redirect"
			case route == "" && code == http.StatusMethodNotAllowed:
				route = "method_not_allowed" // a path some endpoint takes, another method
			case route == "":
				route = "unmatched"
			}
			s.metrics.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			s.metrics.httpSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// armoryAgent is ArmoryAgentResponse of the REST contract.
type armoryAgent struct {
	AgentID        string   `json:"agentId"`
	Accounts       []string `json:"accounts"`
	Caching        bool     `json:"caching"`
	ClouddriverID  string   `json:"clouddriverId"`
	LastConnection string   `json:"lastConnection"`
	Type           string   `json:"type"`
	ZoneID         string   `json:"zoneId,omitempty"`
	Version        string   `json:"version,omitempty"`
	// AssignedAccounts are the accounts the agent caches (Accounts it
	// serves; another agent replica caches the rest).
	AssignedAccounts []string `json:"assignedAccounts"`
}

func agentResponse(a AgentInfo) armoryAgent {
	return armoryAgent{
		AgentID: a.ID, Accounts: nonNil(a.Accounts), Caching: len(a.Assigned) > 0, ClouddriverID: a.ReplicaID,
		// Milliseconds, as the database keeps it: every replica answers alike.
		LastConnection: a.ConnectedAt.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano), Type: "kubernetes",
		ZoneID: a.ZoneID, Version: a.Version, AssignedAccounts: nonNil(a.Assigned),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// getAgents lists the agents of the whole cluster.
func (s *Server) getAgents(w http.ResponseWriter, _ *http.Request) {
	agents := s.ConnectedAgents()
	out := make([]armoryAgent, 0, len(agents))
	for _, a := range agents {
		out = append(out, agentResponse(a))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agentId")
	for _, a := range s.ConnectedAgents() {
		if a.ID == id {
			httpapi.WriteJSON(w, http.StatusOK, agentResponse(a))
			return
		}
	}
	httpapi.WriteError(w, http.StatusNotFound, "agent %q is not connected to the control plane", id)
}

func (s *Server) getAgentAccount(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("accountName")
	holders := s.registry.holders(name)
	row, rowErr := s.store.GetAccount(r.Context(), name)
	if rowErr != nil && !errors.Is(rowErr, store.ErrNotFound) {
		s.log.Error("read account", "account", name, "err", rowErr)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the account")
		return
	}
	if len(holders) == 0 {
		// The replica of the agent serving it knows its live state (a
		// dynamic account's row alone does not).
		answered, ferr := s.forwardRead(w, r, name)
		switch {
		case answered:
			return
		case rowErr == nil:
			// A dynamic account: its row, without the agents' state, if
			// their replica cannot be reached.
		case ferr != nil:
			httpapi.WriteError(w, http.StatusBadGateway, "%v; try again", ferr)
			return
		default:
			httpapi.WriteError(w, http.StatusNotFound, "account %q is not served by any agent connected to the control plane", name)
			return
		}
	}
	// An agent serving it from its own configuration makes it a static
	// account, whatever a dynamic account's row of the same name says
	// (such a row is refused today; one stored before, or a race, is
	// named apart, not mixed in).
	static := slices.ContainsFunc(holders, func(h agentView) bool {
		info := h.Accounts[name].info
		return info != nil && !info.GetDynamic()
	})
	var out accountview.Account
	if rowErr == nil && !static {
		// A dynamic account: its lifecycle row tells where it is.
		out = accountview.FromRow(row)
	} else {
		// The agent serving it describes it best; among standbys, the
		// latest word.
		h := slices.MaxFunc(holders, func(a, b agentView) int {
			sa, sb := a.Accounts[name], b.Accounts[name]
			if ra, rb := sa.state != kubesvcv1.AccountStatus_STANDBY, sb.state != kubesvcv1.AccountStatus_STANDBY; ra != rb {
				if ra {
					return 1
				}
				return -1
			}
			return sa.updated.Compare(sb.updated)
		})
		info := h.Accounts[name].info
		def := map[string]any{
			"name": name, "namespaces": info.GetNamespaces(), "kinds": info.GetKinds(),
			"omitKinds": info.GetOmitKinds(), "onlyNamespacedResources": info.GetOnlyNamespacedResources(),
		}
		if perms := info.GetPermissions(); len(perms) > 0 {
			p := map[string]any{}
			for kind, roles := range perms {
				list := make([]any, 0, len(roles.GetRoles()))
				for _, r := range roles.GetRoles() {
					list = append(list, r)
				}
				p[kind] = list
			}
			def["permissions"] = p
		}
		out = accountview.New(name, "ACTIVE", def, info.GetApiHost(), info.GetKubernetesVersion(), info.GetCertFingerprint())
		out.ZoneID, out.Dynamic = h.ZoneID, info.GetDynamic()
		out.LastUpdated = h.Accounts[name].updated.UnixMilli()
		out.MaxWatchAgeSeconds = info.GetMaxResumableResourceAgeMs() / 1000
		if rowErr == nil {
			out.ConflictingDynamicAccount = accountview.Conflict(row)
		}
	}
	out.Connections = len(holders)
	for _, h := range holders {
		st := h.Accounts[name]
		out.Agents = append(out.Agents, h.AgentID)
		out.AgentStates[h.AgentID] = st.state.String()
		// An agent in ERROR says why; one WATCHING may name the streams
		// it cannot serve (forbidden kinds...).
		if st.message != "" && (st.state == kubesvcv1.AccountStatus_ERROR || out.ErrorMessage == "") {
			out.ErrorMessage = st.message
		}
		if out.KubeHost == "" && st.info != nil {
			out.KubeHost, out.KubeVersion, out.CertFingerprint = st.info.GetApiHost(), st.info.GetKubernetesVersion(), st.info.GetCertFingerprint()
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// getNamespaces answers an account's namespaces as Clouddriver does: those
// its namespaces setting names, else those of the cache.
func (s *Server) getNamespaces(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("accountName")
	// The replica holding the agent knows the account's settings: another
	// asks it (502 when it cannot: the cache alone would ignore them).
	holders := s.registry.holders(name)
	if len(holders) == 0 {
		answered, ferr := s.forwardRead(w, r, name)
		if answered {
			return
		}
		if ferr != nil {
			httpapi.WriteError(w, http.StatusBadGateway, "%v; try again", ferr)
			return
		}
	}
	if !slices.ContainsFunc(s.ConnectedAgents(), func(a AgentInfo) bool { return slices.Contains(a.Accounts, name) }) {
		httpapi.WriteError(w, http.StatusNotFound, "account %q is not served by any agent connected to the control plane", name)
		return
	}
	for _, h := range holders {
		if configured := h.Accounts[name].info.GetNamespaces(); len(configured) > 0 {
			out := slices.Clone(configured)
			slices.Sort(out)
			httpapi.WriteJSON(w, http.StatusOK, slices.Compact(out))
			return
		}
	}
	ns, err := s.store.Namespaces(r.Context(), name)
	if err != nil {
		s.log.Error("list namespaces", "account", name, "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the cache")
		return
	}
	if ns == nil {
		ns = []string{}
	}
	httpapi.WriteJSON(w, http.StatusOK, ns)
}

// cachedObject is one object of the read API.
type cachedObject struct {
	Account         string            `json:"account"`
	APIVersion      string            `json:"apiVersion"`
	Kind            string            `json:"kind"`
	Namespace       string            `json:"namespace,omitempty"`
	Name            string            `json:"name"`
	UID             string            `json:"uid,omitempty"`
	ResourceVersion string            `json:"resourceVersion,omitempty"`
	Application     string            `json:"application,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	UpdatedAt       time.Time         `json:"updatedAt"`
	Manifest        json.RawMessage   `json:"manifest"`
}

func toCachedObject(o store.Object) cachedObject {
	apiVersion := o.Version
	if o.Group != "" {
		apiVersion = o.Group + "/" + o.Version
	}
	return cachedObject{
		Account: o.Account, APIVersion: apiVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name,
		UID: o.UID, ResourceVersion: o.ResourceVersion, Application: o.Application, Labels: o.Labels,
		UpdatedAt: o.UpdatedAt, Manifest: json.RawMessage(o.JSON),
	}
}

var listParams = []string{"account", "kind", "group", "namespace", "name", "application", "labelSelector", "limit", "continue"}

// continueHeader carries, with a full page of a limited list, the token
// of the next page (?continue=).
const continueHeader = "X-Continue"

// continueToken names the object a page ended with, and the filters of
// its list (filtersHash): a token is good for the next page of the same
// list only.
func continueToken(k store.ObjectKey, filters string) string {
	b, _ := json.Marshal([]string{k.Account, k.Kind, k.Namespace, k.Name, k.Group, filters})
	return base64.RawURLEncoding.EncodeToString(b)
}

// filtersHash fingerprints what q selects, normalized (kind in lower case,
// as it matches; the label selector in its canonical form), leaving out
// the page: its limit and position.
func filtersHash(q store.Query) string {
	sel := ""
	if q.Selector != nil {
		sel = q.Selector.String()
	}
	b, _ := json.Marshal([]any{q.Account, strings.ToLower(q.Kind), q.Group, q.CoreGroup, q.Namespace, q.Name, q.Application, sel})
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// parseContinue reads a token of continueToken, which must have been
// issued for a list with the filters hashed as filters.
func parseContinue(tok, filters string) (*store.ObjectKey, error) {
	notOurs := errors.New("continue: not a token of this API (take it from the X-Continue header of the previous page)")
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var f []string
	if err != nil || json.Unmarshal(b, &f) != nil || len(f) != 5 && len(f) != 6 {
		return nil, notOurs
	}
	for _, v := range f {
		if checkKeyValue("continue", v) != nil {
			return nil, notOurs
		}
	}
	// A token of the earlier format, which records no filters (a replica
	// not yet upgraded issued it), is taken as it was.
	if len(f) == 6 && f[5] != filters {
		return nil, errors.New("continue: the token is for a list with other filters; give the same account, kind, group, namespace, name, application and labelSelector as for its first page (limit may change), or list again from the first page (without continue)")
	}
	return &store.ObjectKey{Account: f[0], Kind: f[1], Namespace: f[2], Name: f[3], Group: f[4]}, nil
}

// checkKeyValue refuses a value no cached object can have in key field
// what (the store keeps keys of up to 253 ASCII bytes, see store.Fit):
// some databases would answer it with an error rather than nothing.
func checkKeyValue(what, v string) error {
	if len(v) > 253 {
		return fmt.Errorf("%s: longer than 253 bytes", what)
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf || v[i] < 0x20 || v[i] == 0x7f {
			return fmt.Errorf("%s: %q is not printable ASCII; no cached object has such a %s", what, v, what)
		}
	}
	return nil
}

// parseQuery turns query parameters into a store.Query, naming the
// offending parameter on error.
func parseQuery(v url.Values, allowed []string) (store.Query, error) {
	if err := httpapi.CheckQuery(v, allowed...); err != nil {
		return store.Query{}, err
	}
	q := store.Query{
		Account: v.Get("account"), Kind: v.Get("kind"), Group: v.Get("group"),
		Namespace: v.Get("namespace"), Name: v.Get("name"), Application: v.Get("application"),
	}
	_, q.CoreGroup = v["group"] // group= is the core group
	for _, k := range []string{"account", "kind", "group", "namespace", "name"} {
		if err := checkKeyValue(k, v.Get(k)); err != nil {
			return store.Query{}, err
		}
	}
	if a := q.Application; !utf8.ValidString(a) || strings.ContainsRune(a, 0) {
		return store.Query{}, fmt.Errorf("application: not valid UTF-8 text")
	}
	if s := v.Get("labelSelector"); s != "" {
		sel, err := labels.Parse(s)
		if err != nil {
			return store.Query{}, fmt.Errorf("labelSelector: %w", err)
		}
		q.Selector = sel
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return store.Query{}, fmt.Errorf("limit: %q is not a non-negative integer", s)
		}
		q.Limit = n
	}
	if s := v.Get("continue"); s != "" {
		after, err := parseContinue(s, filtersHash(q))
		if err != nil {
			return store.Query{}, err
		}
		q.After = after
	}
	return q, nil
}

func (s *Server) listObjects(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), listParams)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	objs, err := s.store.ListObjects(r.Context(), q)
	if err != nil {
		s.log.Error("list cached objects", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the cache")
		return
	}
	out := make([]cachedObject, 0, len(objs))
	for _, o := range objs {
		out = append(out, toCachedObject(o))
	}
	if q.Limit > 0 && len(objs) == q.Limit {
		w.Header().Set(continueHeader, continueToken(objs[len(objs)-1].ObjectKey, filtersHash(q)))
	}
	httpapi.WriteJSON(w, http.StatusOK, out) // an answer that cannot be encoded drops the token
}

var getParams = []string{"namespace", "group", "minResourceVersion", "waitMs"}

// maxWait caps waitMs.
const maxWait = time.Minute

// getObject answers one cached object. With waitMs it waits up to that
// long for the object to be cached (at minResourceVersion or later, if
// given), which gives a writer read-your-writes: write to Kubernetes, then
// read here with the resourceVersion the API server returned.
func (s *Server) getObject(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, err := parseQuery(v, getParams)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var wait time.Duration
	if ms := v.Get("waitMs"); ms != "" {
		n, err := strconv.Atoi(ms)
		if err != nil || n < 0 || int64(n) > maxWait.Milliseconds() {
			httpapi.WriteError(w, http.StatusBadRequest, "waitMs: %q is not an integer between 0 and %d", ms, maxWait.Milliseconds())
			return
		}
		wait = time.Duration(n) * time.Millisecond
	}
	minRV := v.Get("minResourceVersion")
	if _, err := strconv.ParseUint(minRV, 10, 64); minRV != "" && err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "minResourceVersion: %q is not a resourceVersion the API server issues (a decimal unsigned integer, such as 123456)", minRV)
		return
	}
	key := store.ObjectKey{
		Account: r.PathValue("account"), Kind: r.PathValue("kind"), Name: r.PathValue("name"),
		Group: q.Group, Namespace: q.Namespace,
	}
	for what, val := range map[string]string{"account": key.Account, "kind": key.Kind, "name": key.Name} {
		if err := checkKeyValue(what, val); err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, "path: %v", err)
			return
		}
	}
	_, groupGiven := v["group"]
	o, err := s.waitObject(r.Context(), key, groupGiven, minRV, wait)
	if httpapi.Interrupted(w, r) {
		return
	}
	if err == nil && minRV != "" && !atLeast(o.ResourceVersion, minRV) {
		httpapi.WriteError(w, http.StatusGatewayTimeout, "cached %s %q is at resourceVersion %s, not yet %s, after waiting %s",
			key.Kind, key.Name, o.ResourceVersion, minRV, wait)
		return
	}
	var ambiguous *ambiguousGroupError
	switch {
	case errors.Is(err, store.ErrNotFound) && key.Namespace == "":
		httpapi.WriteError(w, http.StatusNotFound, "no cached cluster-scoped %s %q in account %q (no namespace= given); for a namespaced object, pass ?namespace=",
			key.Kind, key.Name, key.Account)
	case errors.Is(err, store.ErrNotFound):
		httpapi.WriteError(w, http.StatusNotFound, "no cached %s %q in namespace %q of account %q", key.Kind, key.Name, key.Namespace, key.Account)
	case errors.As(err, &ambiguous):
		httpapi.WriteError(w, http.StatusBadRequest, "group: %v", err)
	case err != nil:
		s.log.Error("get cached object", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the cache")
	default:
		httpapi.WriteJSON(w, http.StatusOK, toCachedObject(o))
	}
}

// ambiguousGroupError: a kind and name without a group match objects of
// several API groups.
type ambiguousGroupError struct {
	kind, name string
	groups     []string
}

func (e *ambiguousGroupError) Error() string {
	return fmt.Sprintf("%s %q exists in API groups %s; name one with ?group=", e.kind, e.name, strings.Join(e.groups, ", "))
}

// lookup reads one cached object. Without a group it accepts the object of
// any group, if only one group has it.
func (s *Server) lookup(ctx context.Context, key store.ObjectKey, groupGiven bool) (store.Object, error) {
	if groupGiven {
		return s.store.GetObject(ctx, key)
	}
	objs, err := s.store.ListObjects(ctx, store.Query{Account: key.Account, Kind: key.Kind, Namespace: key.Namespace, Name: key.Name})
	if err != nil {
		return store.Object{}, err
	}
	// The list filters match prefixes of nothing: Namespace "" means any
	// namespace there, but here it means cluster-scoped.
	var found []store.Object
	for _, o := range objs {
		if o.Namespace == key.Namespace && o.Name == key.Name {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return store.Object{}, fmt.Errorf("%s %q: %w", key.Kind, key.Name, store.ErrNotFound)
	case 1:
		return found[0], nil
	}
	e := &ambiguousGroupError{kind: key.Kind, name: key.Name}
	for _, o := range found {
		e.groups = append(e.groups, strconv.Quote(o.Group))
	}
	return store.Object{}, e
}

// waitObject reads an object, waiting up to wait for it to be cached at
// minRV or later (any version when minRV is empty). It returns what it
// last read: the caller compares versions to tell a timeout.
func (s *Server) waitObject(ctx context.Context, key store.ObjectKey, groupGiven bool, minRV string, wait time.Duration) (store.Object, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	watchKey := objectKeyString(key)
	// Commits of other replicas (an account cached through another
	// replica's agent) are not notified here: read again now and then;
	// seldom when this replica caches the account (its commits wake the
	// wait), in case the account moves during it.
	every := crossReplicaPoll
	if s.registry.cachesLocally(key.Account) {
		every = localPoll
	}
	poll := time.NewTicker(every)
	defer poll.Stop()
	polls := poll.C
	next := s.commits.current()
	o, err := s.lookup(ctx, key, groupGiven)
	for wait > 0 {
		if err != nil && !errors.Is(err, store.ErrNotFound) || err == nil && (minRV == "" || atLeast(o.ResourceVersion, minRV)) {
			break // a store error, or satisfied
		}
		select {
		case <-next.done:
			next, o, err = s.afterCommits(ctx, next, watchKey, key, groupGiven, o, err)
			continue
		case <-polls:
			o, err = s.lookup(ctx, key, groupGiven)
			continue
		case <-ctx.Done():
			return o, ctx.Err()
		case <-deadline.C:
		}
		break
	}
	return o, err
}

// How often a wait for an object reads the store again, for writes
// persisted by other replicas: when another replica caches the account,
// and when this one does.
const (
	crossReplicaPoll = 100 * time.Millisecond
	localPoll        = 2 * time.Second
)

// WaitCached waits until the cache holds the object at minRV or later
// (read-your-writes for operations), or ctx ends.
func (s *Server) WaitCached(ctx context.Context, key store.ObjectKey, minRV string) error {
	deadline, ok := ctx.Deadline()
	wait := maxWait
	if ok {
		wait = time.Until(deadline)
	}
	// The group is known ("" is the core group): a core Service must not
	// be confused with a Knative one of the same name.
	o, err := s.waitObject(ctx, key, true, minRV, wait)
	if err != nil {
		return err
	}
	if minRV != "" && !atLeast(o.ResourceVersion, minRV) {
		return fmt.Errorf("cached %s %s/%s is at resourceVersion %s, not yet %s", key.Kind, key.Namespace, key.Name, o.ResourceVersion, minRV)
	}
	return nil
}
