package operations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Routes registers the operation API.
func (m *Manager) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /kubernetes/ops", httpapi.Query(m.postOps, "clientRequestId"))
	mux.HandleFunc("POST /kubernetes/ops/{name}", httpapi.Query(m.postOp, "clientRequestId"))
	mux.HandleFunc("GET /task/{id}", httpapi.Query(m.getTask, "waitMs"))
	mux.HandleFunc("GET /armory/agent/operations", httpapi.Query(m.listHistory, "items", "page", "limit"))
	mux.HandleFunc("GET /armory/agent/operations/{opId}", httpapi.Query(m.getHistory))
}

func (m *Manager) readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, m.cfg.MaxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("body: %v", err)
	}
	if int64(len(body)) > m.cfg.MaxRequestBytes {
		return nil, fmt.Errorf("body: larger than the %d-byte limit for manifests", m.cfg.MaxRequestBytes)
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil, errors.New("body: empty")
	}
	return body, nil
}

// postOps is POST /kubernetes/ops: [{"deployManifest": {...}}, ...].
func (m *Manager) postOps(w http.ResponseWriter, r *http.Request) {
	body, err := m.readBody(r)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil || len(items) == 0 {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			httpapi.WriteError(w, http.StatusBadRequest, "%v", httpapi.DecodeError("", err))
			return
		}
		httpapi.WriteError(w, http.StatusBadRequest, "body: expected a non-empty JSON array of single-key operation objects")
		return
	}
	list := make([]op, 0, len(items))
	for i, it := range items {
		if len(it) != 1 {
			httpapi.WriteError(w, http.StatusBadRequest, "[%d]: expected exactly one key (the operation type), got %d", i, len(it))
			return
		}
		for typ, desc := range it {
			o, err := m.validate(fmt.Sprintf("[%d].%s", i, typ), typ, desc)
			if err != nil {
				httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
				return
			}
			list = append(list, o)
		}
	}
	m.accept(w, r, list)
}

// postOp is POST /kubernetes/ops/{name} with the bare description.
func (m *Manager) postOp(w http.ResponseWriter, r *http.Request) {
	body, err := m.readBody(r)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	typ := r.PathValue("name")
	o, err := m.validate(typ, typ, body)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	m.accept(w, r, []op{o})
}

// isIDChar reports whether c may appear in a task id.
func isIDChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':'
}

func (m *Manager) accept(w http.ResponseWriter, r *http.Request, ops []op) {
	id := r.URL.Query().Get("clientRequestId")
	if len(id) > 200 {
		httpapi.WriteError(w, http.StatusBadRequest, "clientRequestId: longer than 200 characters")
		return
	}
	if i := strings.IndexFunc(id, func(c rune) bool { return !isIDChar(c) }); i >= 0 {
		// It becomes the task id, a path segment of /task/{id}.
		c, _ := utf8.DecodeRuneInString(id[i:])
		httpapi.WriteError(w, http.StatusBadRequest, "clientRequestId: %q at offset %d is not a letter, digit, '.', '_', ':' or '-'", c, i)
		return
	}
	id, err := m.start(r.Context(), id, ops)
	if errors.Is(err, errStopping) {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "this control plane is shutting down; send the task to another replica")
		return
	}
	if err != nil {
		m.log.Error("operations: start", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot record the task")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": id, "resourceUri": "/task/" + id})
}

// validate checks one description before anything is sent to an agent:
// the account is served, then the agent's own checks that need no cluster
// (ops.Validate: shape, required fields, manifests), so that what an agent
// would refuse without touching its cluster is a 400 here.
func (m *Manager) validate(where, typ string, desc json.RawMessage) (op, error) {
	if !slices.Contains(ops.OperationTypes(), typ) {
		return op{}, fmt.Errorf("%s: unknown operation type %q; supported: %s", where, typ, strings.Join(ops.OperationTypes(), ", "))
	}
	var d struct {
		Account      string            `json:"account"`
		Credentials  string            `json:"credentials"`
		Manifests    []json.RawMessage `json:"manifests"`
		Manifest     json.RawMessage   `json:"manifest"`
		ManifestName string            `json:"manifestName"`
		Kinds        []string          `json:"kinds"`
		Replicas     json.RawMessage   `json:"replicas"`
		PatchBody    json.RawMessage   `json:"patchBody"`
		Options      struct {
			MergeStrategy string `json:"mergeStrategy"`
		} `json:"options"`
	}
	if t := bytes.TrimSpace(desc); len(t) == 0 || t[0] != '{' {
		return op{}, fmt.Errorf("%s: expected a JSON object, the operation's description", where)
	}
	if err := json.Unmarshal(desc, &d); err != nil {
		return op{}, httpapi.DecodeError(where, err)
	}
	if d.Account == "" {
		d.Account = d.Credentials // Clouddriver's older name
	}
	if d.Account == "" {
		return op{}, fmt.Errorf("%s.account: required", where)
	}
	served := false
	for _, a := range m.agents.ConnectedAgents() {
		for _, acct := range a.Accounts {
			served = served || acct == d.Account
		}
	}
	if !served {
		return op{}, fmt.Errorf("%s.account: %q is not served by any connected agent", where, d.Account)
	}
	checkManifest := func(path string, raw json.RawMessage) error {
		var mf struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name, GenerateName string
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &mf); err != nil {
			return fmt.Errorf("malformed manifest: %w", httpapi.DecodeError(path, err))
		}
		switch {
		case mf.APIVersion == "":
			return fmt.Errorf("%s.apiVersion: required", path)
		case mf.Kind == "":
			return fmt.Errorf("%s.kind: required", path)
		case mf.Metadata.Name == "" && mf.Metadata.GenerateName == "":
			return fmt.Errorf("%s.metadata.name: required", path)
		}
		return nil
	}
	switch typ {
	case "cleanupArtifacts":
		for j, raw := range d.Manifests {
			if err := checkManifest(fmt.Sprintf("%s.manifests[%d]", where, j), raw); err != nil {
				return op{}, err
			}
		}
	case "deployManifest":
		// ops.Validate, below: manifests (nulls left out, as Clouddriver
		// does) or the deprecated single manifest.
	case "runJob":
		if len(d.Manifest) == 0 {
			return op{}, fmt.Errorf("%s.manifest: required", where)
		}
		if err := checkManifest(where+".manifest", d.Manifest); err != nil {
			return op{}, err
		}
	case "deleteManifest":
		if d.ManifestName == "" && len(d.Kinds) == 0 {
			return op{}, fmt.Errorf("%s.manifestName: required (\"kind name\"), or kinds with labelSelectors", where)
		}
	default:
		if d.ManifestName == "" {
			return op{}, fmt.Errorf("%s.manifestName: required (\"kind name\")", where)
		}
	}
	if d.ManifestName != "" && len(strings.Fields(d.ManifestName)) != 2 {
		return op{}, fmt.Errorf("%s.manifestName: %q is not \"kind name\"", where, d.ManifestName)
	}
	if typ == "scaleManifest" {
		var n int
		if err := json.Unmarshal(d.Replicas, &n); err != nil || n < 0 {
			// Clouddriver sends replicas as a number or a numeric string.
			var s string
			if json.Unmarshal(d.Replicas, &s) != nil {
				return op{}, fmt.Errorf("%s.replicas: required, a non-negative integer", where)
			}
			if n, err = strconv.Atoi(s); err != nil || n < 0 {
				return op{}, fmt.Errorf("%s.replicas: %q is not a non-negative integer", where, s)
			}
		}
	}
	if typ == "patchManifest" {
		if len(d.PatchBody) == 0 || string(d.PatchBody) == "null" {
			return op{}, fmt.Errorf("%s.patchBody: required", where)
		}
		switch d.Options.MergeStrategy {
		case "", "strategic", "json", "merge":
		default:
			return op{}, fmt.Errorf("%s.options.mergeStrategy: %q is not strategic, json or merge", where, d.Options.MergeStrategy)
		}
	}
	if err := ops.Validate(typ, desc); err != nil {
		var ve *ops.ValidationError
		switch {
		case errors.As(err, &ve) && ve.Field != "":
			return op{}, fmt.Errorf("%s.%s: %s", where, ve.Field, ve.Message)
		case errors.As(err, &ve):
			return op{}, fmt.Errorf("%s: %s", where, ve.Message)
		}
		return op{}, fmt.Errorf("%s: %w", where, err)
	}
	return op{Type: typ, Account: d.Account, Description: desc}, nil
}

// getTask is GET /task/{id} in Clouddriver's task shape. With waitMs
// (ours, up to 60000) it answers when the task ends or the time is up.
func (m *Manager) getTask(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("waitMs"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 60000 {
			httpapi.WriteError(w, http.StatusBadRequest, "waitMs: %q is not an integer between 0 and 60000", v)
			return
		}
		if t := m.running(r.PathValue("id")); t != nil {
			timer := time.NewTimer(time.Duration(n) * time.Millisecond)
			select {
			case <-t.done:
				if t.recorded { // the row as just committed
					timer.Stop()
					m.writeTask(w, t.final)
					return
				}
			case <-timer.C:
			case <-r.Context().Done():
			}
			timer.Stop()
			// The client left (nothing to answer), or this replica is
			// stopping (503: the store is no longer read).
			if httpapi.Interrupted(w, r) {
				return
			}
		}
	}
	if row, ok := m.readOperation(w, r, r.PathValue("id"), "task", "the task"); ok {
		m.writeTask(w, row)
	}
}

// readOperation reads history row id, answering 404 ("what id does not
// exist") or 500 ("cannot read source") when it cannot.
func (m *Manager) readOperation(w http.ResponseWriter, r *http.Request, id, what, source string) (store.Operation, bool) {
	row, err := m.st.GetOperation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		httpapi.WriteError(w, http.StatusNotFound, "%s %q does not exist", what, id)
		return row, false
	}
	if err != nil {
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read %s", source)
		return row, false
	}
	return row, true
}

// writeTask answers with a task in Clouddriver's shape.
func (m *Manager) writeTask(w http.ResponseWriter, row store.Operation) {
	var res taskResult
	_ = json.Unmarshal(row.Result, &res)
	status := map[string]any{
		"phase": "ORCHESTRATION", "status": strings.ToLower(row.State),
		"complete": row.State != Running, "completed": row.State != Running, "failed": row.State == Failed, "retryable": false,
	}
	// Clouddriver's task: a history of status lines, and for a failure an
	// EXCEPTION result object, which is where Orca (MonitorKatoTask) and
	// Deck look for the reason.
	history := []map[string]string{{"phase": "ORCHESTRATION", "status": "Initializing Orchestration Task"}}
	results := res.Results
	if results == nil {
		results = []json.RawMessage{}
	}
	switch row.State {
	case Failed:
		msg := row.ErrorMessage
		if msg == "" {
			msg = "the operation failed"
		}
		status["status"] = msg
		history = append(history, map[string]string{"phase": "ORCHESTRATION", "status": "Orchestration failed: " + msg})
		typ, _, _ := strings.Cut(row.Type, "+")
		exception, _ := json.Marshal(map[string]string{"type": "EXCEPTION", "operation": typ, "cause": msg, "message": msg})
		results = append(results, exception)
	case Succeeded:
		history = append(history, map[string]string{"phase": "ORCHESTRATION", "status": "Orchestration completed."})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"id": row.ID, "status": status, "history": history, "resultObjects": results, "state": row.State,
		"startTimeMs": row.ReceivedAt.UnixMilli(),
	})
}

// record is one row of the operation history for the REST API.
type record struct {
	ID             string          `json:"id"`
	Account        string          `json:"account"`
	Type           string          `json:"type"`
	AgentID        string          `json:"agentId"`
	ControlPlaneID string          `json:"clouddriverId"`
	State          string          `json:"state"`
	Error          string          `json:"error,omitempty"`
	ReceivedAt     int64           `json:"receivedAtMs"`
	SentAt         int64           `json:"sentAtMs,omitempty"`
	FinishedAt     int64           `json:"finishedAtMs,omitempty"`
	DurationMs     int64           `json:"durationMs,omitempty"`
	Request        json.RawMessage `json:"request,omitempty"`
}

func toRecord(o store.Operation, withRequest bool) record {
	rec := record{ID: o.ID, Account: o.Account, Type: o.Type, AgentID: o.AgentID, ControlPlaneID: o.ControlPlaneID,
		State: o.State, Error: o.ErrorMessage, ReceivedAt: o.ReceivedAt.UnixMilli()}
	if !o.SentAt.IsZero() {
		rec.SentAt = o.SentAt.UnixMilli()
	}
	if !o.FinishedAt.IsZero() {
		rec.FinishedAt = o.FinishedAt.UnixMilli()
		rec.DurationMs = o.FinishedAt.Sub(o.ReceivedAt).Milliseconds()
	}
	if withRequest && json.Valid(o.Request) {
		rec.Request = o.Request
	}
	return rec
}

// maxHistoryLimit bounds one page of GET /armory/agent/operations (each
// row with its result: a page is held in memory whole).
const maxHistoryLimit = 10_000

// listHistory is GET /armory/agent/operations?items=&page=: a page of
// the history, newest first (items per page, default 100; page from 1;
// limit is items' earlier name).
func (m *Manager) listHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("items") != "" && q.Get("limit") != "" {
		httpapi.WriteError(w, http.StatusBadRequest, "items and limit: give one (limit is the earlier name of items)")
		return
	}
	items, page := 100, 1
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"items", &items, maxHistoryLimit}, {"limit", &items, maxHistoryLimit}, {"page", &page, math.MaxInt32}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > p.max {
				httpapi.WriteError(w, http.StatusBadRequest, "%s: %q is not an integer between 1 and %d", p.name, v, p.max)
				return
			}
			*p.dst = n
		}
	}
	rows, err := m.st.ListOperations(r.Context(), items, (page-1)*items)
	if err != nil {
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the history")
		return
	}
	out := make([]record, 0, len(rows))
	for _, o := range rows {
		out = append(out, toRecord(o, false))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (m *Manager) getHistory(w http.ResponseWriter, r *http.Request) {
	if o, ok := m.readOperation(w, r, r.PathValue("opId"), "operation", "the history"); ok {
		httpapi.WriteJSON(w, http.StatusOK, toRecord(o, true))
	}
}
