package dynaccounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/kubesvc/kubesvc/internal/accountview"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/store"
)

// maxBody bounds a request body (1,000 account definitions fit easily).
const maxBody = 16 << 20

func (m *Manager) routes(mux *http.ServeMux) {
	// h serves f when the feature is on, refusing query parameters other
	// than params.
	h := func(f http.HandlerFunc, params ...string) http.HandlerFunc {
		f = httpapi.Query(f, params...)
		return func(w http.ResponseWriter, r *http.Request) {
			if !m.cfg.Enabled {
				httpapi.WriteError(w, http.StatusNotImplemented, "dynamic accounts are disabled (kubesvc.dynamicAccounts.enabled is false)")
				return
			}
			f(w, r)
		}
	}
	mux.HandleFunc("GET /armory/accounts", h(m.list, "page", "limit"))
	mux.HandleFunc("POST /armory/accounts", h(m.post))
	mux.HandleFunc("PATCH /armory/accounts", h(m.patch))
	mux.HandleFunc("DELETE /armory/accounts", h(m.deleteMany))
	mux.HandleFunc("GET /armory/accounts/{accountName}", h(m.get))
	mux.HandleFunc("DELETE /armory/accounts/{accountName}", h(m.deleteOne))
	mux.HandleFunc("POST /armory/accounts/dynamic", h(m.postDynamic))
	mux.HandleFunc("PUT /armory/accounts/dynamic", h(m.putDynamic))
}

// readArray reads a JSON array body; an empty or malformed body is an
// error naming what is wrong.
func readArray(r *http.Request) ([]json.RawMessage, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("body: %v", err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("body: larger than %d bytes", maxBody)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, errors.New("body: empty; expected a JSON array of accounts")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, fmt.Errorf("%w (a JSON array of accounts)", httpapi.DecodeError("", err))
	}
	if len(items) == 0 {
		return nil, errors.New("body: the array of accounts is empty")
	}
	return items, nil
}

// decodeAll decodes and validates every definition before anything is
// written, so a bad item changes nothing.
func decodeAll(items []json.RawMessage, strict bool) ([]Definition, []string, error) {
	defs := make([]Definition, 0, len(items))
	states := make([]string, 0, len(items))
	seen := map[string]bool{}
	for i, raw := range items {
		where := fmt.Sprintf("[%d]", i)
		d, err := decodeDefinition(raw, where, strict)
		if err != nil {
			return nil, nil, err
		}
		if seen[d.Name] {
			return nil, nil, fmt.Errorf("%s.name: %q appears twice", where, d.Name)
		}
		seen[d.Name] = true
		var st struct {
			State *string `json:"state"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, nil, fmt.Errorf("%s.state: must be a string (ACTIVE or INACTIVE)", where)
		}
		state := ""
		if st.State != nil {
			state = *st.State
		}
		defs = append(defs, d)
		states = append(states, strings.ToUpper(state))
	}
	return defs, states, nil
}

// post stores accounts INACTIVE (POST /armory/accounts): 202 with [], or
// 409 with the requests of accounts that already exist, the others still
// being stored.
func (m *Manager) post(w http.ResponseWriter, r *http.Request) {
	m.create(w, r, true, false)
}

// postDynamic is POST /armory/accounts/dynamic: full account definitions
// (Clouddriver's shape; unknown fields kept), one object or an array.
func (m *Manager) postDynamic(w http.ResponseWriter, r *http.Request) {
	m.create(w, r, false, true)
}

// readDefinitions decodes the account definitions of a write (see
// readBody and decodeAll for strict and dynamic) and stores their
// credentials, answering 400 and returning false for the first that is
// unusable: credentials are checked for every item before any account is
// written. defs[i] is decoded from items[i]; refs[i] is its stored
// credentials' reference and sealed value.
func (m *Manager) readDefinitions(w http.ResponseWriter, r *http.Request, strict, dynamic bool) (items []json.RawMessage, defs []Definition, refs [][2]string, ok bool) {
	items, err := readBody(r, dynamic)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return nil, nil, nil, false
	}
	defs, _, err = decodeAll(items, strict)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return nil, nil, nil, false
	}
	refs = make([][2]string, len(defs))
	for i, d := range defs {
		ref, sealed, err := m.creds.Store(r.Context(), d)
		if err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, "[%d].%v", i, err)
			return nil, nil, nil, false
		}
		refs[i] = [2]string{ref, sealed}
	}
	return items, defs, refs, true
}

// staticAccounts is what the control plane tells of the accounts agents
// serve from their own configuration (controlplane.Server.StaticAccounts):
// an optional method of Agents.
type staticAccounts interface {
	StaticAccounts(ctx context.Context) (map[string][]string, error)
}

func (m *Manager) create(w http.ResponseWriter, r *http.Request, strict, dynamic bool) {
	items, defs, refs, ok := m.readDefinitions(w, r, strict, dynamic)
	if !ok {
		return
	}
	// A name an agent serves statically: the agent refuses the dynamic
	// account, and the row, once stored, stands for the static account in
	// the account views and cannot be deleted cleanly. Refused whole.
	if sa, ok := m.agent.(staticAccounts); ok {
		static, err := sa.StaticAccounts(r.Context())
		if err != nil {
			m.log.Error("dynamic accounts: read the agents' static accounts", "err", err)
			httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the accounts agents serve")
			return
		}
		for i, d := range defs {
			ids := static[d.Name]
			if len(ids) == 0 {
				continue
			}
			// StaticAccounts knows other replicas' agents by the names they
			// serve, dynamic ones too: a name with a row is a dynamic
			// account (answered as existing below), not a static one.
			switch _, err := m.st.GetAccount(r.Context(), d.Name); {
			case err == nil:
				continue
			case !errors.Is(err, store.ErrNotFound):
				m.log.Error("dynamic accounts: read account", "account", d.Name, "err", err)
				httpapi.WriteError(w, http.StatusInternalServerError, "cannot read account %q", d.Name)
				return
			}
			httpapi.WriteError(w, http.StatusConflict, "[%d].name: account %q is configured statically in agent %s (its configuration file); "+
				"a dynamic account cannot take its name (nothing was stored)", i, d.Name, strings.Join(ids, ", "))
			return
		}
	}
	var existing []json.RawMessage
	for i, d := range defs {
		_, err := m.st.CreateAccount(r.Context(), store.Account{
			Name: d.Name, State: Inactive, ZoneID: d.ZoneID, Definition: d.stored(),
			KubeconfigRef: refs[i][0], KubeconfigSealed: refs[i][1], Dynamic: dynamic,
		})
		switch {
		case errors.Is(err, store.ErrExists):
			existing = append(existing, items[i])
		case err != nil:
			m.log.Error("dynamic accounts: create", "account", d.Name, "err", err)
			httpapi.WriteError(w, http.StatusInternalServerError, "cannot store account %q", d.Name)
			return
		}
	}
	if len(existing) > 0 {
		httpapi.WriteJSON(w, http.StatusConflict, existing)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, []any{})
}

// readBody reads an array, or with single also one object.
func readBody(r *http.Request, single bool) ([]json.RawMessage, error) {
	if !single {
		return readArray(r)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("body: %v", err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("body: larger than %d bytes", maxBody)
	}
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "{") {
		return []json.RawMessage{json.RawMessage(trimmed)}, nil
	}
	r.Body = io.NopCloser(strings.NewReader(trimmed))
	return readArray(r)
}

// patch sets desired states: ACTIVE (the default) migrates INACTIVE,
// FAILED and ORPHANED accounts (resetting failed_count); INACTIVE
// deactivates. 202; or, changing nothing, 404 naming unknown accounts or
// 409 naming accounts being deleted (checked first; an account deleted
// between that check and its write is left alone and named in a 409).
func (m *Manager) patch(w http.ResponseWriter, r *http.Request) {
	items, err := readArray(r)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	defs, states, err := decodeAll(items, true)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	for i, st := range states {
		if st != "" && st != Active && st != Inactive {
			httpapi.WriteError(w, http.StatusBadRequest, "[%d].state: %q is not ACTIVE or INACTIVE", i, st)
			return
		}
	}
	creds := make([][2]string, len(defs))
	for i, d := range defs {
		if d.KubeconfigFile != "" || d.KubeconfigContents != "" || d.KubeconfigAgent != "" || d.ServiceAccount {
			ref, sealed, err := m.creds.Store(r.Context(), d)
			if err != nil {
				httpapi.WriteError(w, http.StatusBadRequest, "[%d].%v", i, err)
				return
			}
			creds[i] = [2]string{ref, sealed}
		}
	}
	rows, ok := m.writable(w, r.Context(), names(defs))
	if !ok {
		return
	}
	// An account PATCH ACTIVE would send to agents (wantActive) without
	// credentials, in the row or in this PATCH, could only fail there: a
	// 400 now, naming it. (POST takes an account without them: they may
	// come with the PATCH that activates it, as in Armory's migration.)
	for i, a := range rows {
		if states[i] == Inactive || creds[i] != ([2]string{}) || hasCredentials(a) {
			continue
		}
		if next := a; wantActiveState(&next) == ToMigrate {
			httpapi.WriteError(w, http.StatusBadRequest, "[%d].kubeconfigFile: required to activate account %q, which has no credentials (%s); "+
				"give them in this PATCH (nothing was changed)", i, a.Name, credentialFields)
			return
		}
	}
	var missing, deleting []string
	for i, d := range defs {
		desired := states[i]
		err := m.update(r.Context(), d.Name, func(a *store.Account) bool {
			if a.State == Deleting { // since writable
				deleting = append(deleting, a.Name)
				return false
			}
			// Written only if something changes: a PATCH repeating the
			// state an account has must not count as a change of it
			// (the orphan grace runs from the row's last change).
			before := *a
			if d.ZoneID != "" {
				a.ZoneID = d.ZoneID
			}
			if creds[i] != ([2]string{}) {
				a.KubeconfigRef, a.KubeconfigSealed = creds[i][0], creds[i][1]
				def := loadDefinition(a.Definition)
				// stored keeps a secret reference in kubeconfigContents
				// and drops inline contents (sealed in KubeconfigSealed).
				def.KubeconfigFile, def.KubeconfigContents, def.KubeconfigAgent, def.ServiceAccount = d.KubeconfigFile, d.KubeconfigContents, d.KubeconfigAgent, d.ServiceAccount
				a.Definition = def.stored()
			}
			if desired == Inactive {
				wantInactive(a)
			} else {
				wantActive(a)
			}
			return !reflect.DeepEqual(before, *a)
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			missing = append(missing, d.Name)
		case err != nil:
			m.log.Error("dynamic accounts: patch", "account", d.Name, "err", err)
			httpapi.WriteError(w, http.StatusInternalServerError, "cannot update account %q", d.Name)
			return
		}
	}
	m.poke()
	if len(missing) > 0 {
		httpapi.WriteError(w, http.StatusNotFound, "unknown accounts (the others were updated): %s", strings.Join(missing, ", "))
		return
	}
	if len(deleting) > 0 {
		httpapi.WriteError(w, http.StatusConflict, "accounts deleted meanwhile, left alone (the others were updated): %s", strings.Join(deleting, ", "))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// putDynamic updates one account's definition; an ACTIVE account is sent
// to its agent again at once.
func (m *Manager) putDynamic(w http.ResponseWriter, r *http.Request) {
	_, defs, refs, ok := m.readDefinitions(w, r, false, true)
	if !ok {
		return
	}
	rows, ok := m.writable(w, r.Context(), names(defs))
	if !ok {
		return
	}
	// A definition without credentials replaces an account on its way to
	// agents (or retried there) only to fail there: a 400 now. An INACTIVE
	// one may take it; PATCH gives the credentials when it activates it.
	for i, a := range rows {
		if refs[i] != ([2]string{}) {
			continue
		}
		switch a.State {
		case Active, Activating, ToMigrate, Orphaned, Failed:
			httpapi.WriteError(w, http.StatusBadRequest, "[%d].kubeconfigFile: required: account %q is %s, and would be sent to agents without credentials (%s); "+
				"PATCH it INACTIVE first to store a definition without them (nothing was changed)", i, a.Name, a.State, credentialFields)
			return
		}
	}
	var deleting []string
	for i, d := range defs {
		ref, sealed := refs[i][0], refs[i][1]
		err := m.update(r.Context(), d.Name, func(a *store.Account) bool {
			if a.State == Deleting { // since writable
				deleting = append(deleting, a.Name)
				return false
			}
			a.Definition, a.KubeconfigRef, a.KubeconfigSealed, a.Dynamic = d.stored(), ref, sealed, true
			if d.ZoneID != "" {
				a.ZoneID = d.ZoneID
			}
			if a.State == Active || a.State == Activating || a.State == Orphaned {
				a.State, a.Owner = ToMigrate, ""
			}
			return true
		})
		if errors.Is(err, store.ErrNotFound) {
			httpapi.WriteError(w, http.StatusNotFound, "account %q does not exist; create it with POST", d.Name)
			return
		}
		if err != nil {
			httpapi.WriteError(w, http.StatusInternalServerError, "cannot update account %q", d.Name)
			return
		}
	}
	m.poke()
	if len(deleting) > 0 {
		httpapi.WriteError(w, http.StatusConflict, "accounts deleted meanwhile, left alone (the others were updated): %s", strings.Join(deleting, ", "))
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{})
}

// update applies change to the named row, retrying lost races.
func (m *Manager) update(ctx context.Context, name string, change func(*store.Account) bool) error {
	for attempt := 0; ; attempt++ {
		a, err := m.st.GetAccount(ctx, name)
		if err != nil {
			return err
		}
		if !change(&a) {
			return nil
		}
		_, err = m.st.UpdateAccount(ctx, a)
		if !errors.Is(err, store.ErrConflict) || attempt == 5 {
			return err
		}
	}
}

func (m *Manager) deleteMany(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "body: %v", err)
		return
	}
	if len(body) > maxBody {
		httpapi.WriteError(w, http.StatusBadRequest, "body: larger than %d bytes", maxBody)
		return
	}
	var names []string
	if err := json.Unmarshal(body, &names); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v (a non-empty JSON array of account names)", httpapi.DecodeError("", err))
		return
	}
	if len(names) == 0 {
		httpapi.WriteError(w, http.StatusBadRequest, "body: expected a non-empty JSON array of account names")
		return
	}
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			httpapi.WriteError(w, http.StatusBadRequest, "[%d]: empty account name", i)
			return
		}
	}
	if !m.checkExist(w, r.Context(), names) {
		return
	}
	m.requestDelete(w, r.Context(), names)
}

func (m *Manager) deleteOne(w http.ResponseWriter, r *http.Request) {
	m.requestDelete(w, r.Context(), []string{r.PathValue("accountName")})
}

func (m *Manager) requestDelete(w http.ResponseWriter, ctx context.Context, names []string) {
	var missing []string
	for _, n := range names {
		err := m.update(ctx, n, func(a *store.Account) bool {
			if a.State == Deleting && a.Owner != "" {
				return false
			}
			a.State, a.Owner = Deleting, ""
			return true
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			missing = append(missing, n)
		case err != nil:
			httpapi.WriteError(w, http.StatusInternalServerError, "cannot delete account %q", n)
			return
		}
	}
	if len(missing) == len(names) {
		if len(names) == 1 {
			httpapi.WriteError(w, http.StatusNotFound, "account %q does not exist; nothing was changed", names[0])
		} else {
			httpapi.WriteError(w, http.StatusNotFound, "unknown accounts (nothing was changed): %s", strings.Join(missing, ", "))
		}
		return
	}
	m.poke()
	if len(missing) > 0 {
		httpapi.WriteError(w, http.StatusNotFound, "unknown accounts (the others are being deleted): %s", strings.Join(missing, ", "))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (m *Manager) get(w http.ResponseWriter, r *http.Request) {
	a, err := m.st.GetAccount(r.Context(), r.PathValue("accountName"))
	if errors.Is(err, store.ErrNotFound) {
		httpapi.WriteError(w, http.StatusNotFound, "account %q does not exist", r.PathValue("accountName"))
		return
	}
	if err != nil {
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read account")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, m.view(a, m.servingAgents()))
}

// maxPageParam bounds page and limit.
const maxPageParam = 1_000_000

// list is GET /armory/accounts?page=&limit= (1-based page, default 100).
func (m *Manager) list(w http.ResponseWriter, r *http.Request) {
	page, limit := 1, 100
	for key, dst := range map[string]*int{"page": &page, "limit": &limit} {
		if v := r.URL.Query().Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxPageParam {
				httpapi.WriteError(w, http.StatusBadRequest, "%s: %q is not an integer between 1 and %d", key, v, maxPageParam)
				return
			}
			*dst = n
		}
	}
	rows, total, err := m.st.AccountsPage(r.Context(), (page-1)*limit, limit) // no overflow: both <= maxPageParam
	if err != nil {
		m.log.Error("dynamic accounts: list", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "cannot read accounts")
		return
	}
	items := make([]accountview.Account, 0, len(rows))
	serving := m.servingAgents()
	for _, a := range rows {
		items = append(items, m.view(a, serving))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "page": page, "limit": limit, "total": total})
}

// view renders a row for the REST API, with the connected agents of the
// cluster serving the account (connections, agents; their states are
// /agents/kubernetes/accounts/{name}'s, read from the replica holding each).
func (m *Manager) view(a store.Account, serving map[string][]string) accountview.Account {
	v := accountview.FromRow(a)
	v.Agents = append(v.Agents, serving[a.Name]...)
	v.Connections = len(v.Agents)
	return v
}

// servingAgents maps each account to the connected agents serving it,
// sorted by id.
func (m *Manager) servingAgents() map[string][]string {
	if m.agent == nil {
		return nil
	}
	out := holders(m.agent.ConnectedAgents())
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

func names(defs []Definition) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = d.Name
	}
	return out
}

// checkExist answers 404 naming the accounts that do not exist, before
// anything is written; it reports whether they all do.
func (m *Manager) checkExist(w http.ResponseWriter, ctx context.Context, names []string) bool {
	_, ok := m.readAll(w, ctx, names)
	return ok
}

// writable is checkExist, and answers 409 naming the accounts being
// deleted (their definition can no longer change). It returns the rows,
// rows[i] that of names[i].
func (m *Manager) writable(w http.ResponseWriter, ctx context.Context, names []string) ([]store.Account, bool) {
	rows, ok := m.readAll(w, ctx, names)
	if !ok {
		return nil, false
	}
	var deleting []string
	for _, a := range rows {
		if a.State == Deleting {
			deleting = append(deleting, a.Name)
		}
	}
	if len(deleting) > 0 {
		httpapi.WriteError(w, http.StatusConflict, "accounts being deleted (nothing was changed): %s", strings.Join(deleting, ", "))
		return nil, false
	}
	return rows, true
}

// credentialFields names the fields that give an account credentials.
const credentialFields = "kubeconfigFile, kubeconfigContents, kubeconfigAgent or serviceAccount"

// hasCredentials reports whether a row has credentials to activate it
// with: sealed contents, or a credential field in its definition (what
// Credentials.Resolve reads).
func hasCredentials(a store.Account) bool {
	d := loadDefinition(a.Definition)
	return a.KubeconfigSealed != "" || d.KubeconfigContents != "" || d.KubeconfigFile != "" || d.KubeconfigAgent != "" || d.ServiceAccount
}

// wantActiveState is the state wantActive moves a to.
func wantActiveState(a *store.Account) string {
	wantActive(a)
	return a.State
}

// readAll reads the named accounts; it answers 404 naming the missing
// ones (or 500) and reports false when not all could be read.
func (m *Manager) readAll(w http.ResponseWriter, ctx context.Context, names []string) ([]store.Account, bool) {
	rows := make([]store.Account, 0, len(names))
	var missing []string
	for _, n := range names {
		a, err := m.st.GetAccount(ctx, n)
		switch {
		case errors.Is(err, store.ErrNotFound):
			missing = append(missing, n)
		case err != nil:
			m.log.Error("dynamic accounts: read", "account", n, "err", err)
			httpapi.WriteError(w, http.StatusInternalServerError, "cannot read account %q", n)
			return nil, false
		default:
			rows = append(rows, a)
		}
	}
	if len(missing) > 0 {
		httpapi.WriteError(w, http.StatusNotFound, "unknown accounts (nothing was changed): %s", strings.Join(missing, ", "))
		return nil, false
	}
	return rows, true
}
