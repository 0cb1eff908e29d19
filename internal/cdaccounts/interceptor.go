package cdaccounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
)

// maxBody bounds a definition (Clouddriver's are a few kilobytes).
const maxBody = 1 << 20

// cdError is Clouddriver's (Spring Boot's) error body.
type cdError struct {
	Timestamp int64  `json:"timestamp"`
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Message   string `json:"message"`
	Path      string `json:"path"`
}

func writeError(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	writeJSON(w, code, cdError{Timestamp: nowMillis(), Status: code, Error: http.StatusText(code),
		Message: fmt.Sprintf(format, args...), Path: r.URL.Path})
}

func nowMillis() int64 { return time.Now().UnixMilli() }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// user is Spinnaker's authenticated user (Gate forwards it), or
// "anonymous" as in Clouddriver.
func user(r *http.Request) string {
	if u := r.Header.Get("X-SPINNAKER-USER"); u != "" {
		return u
	}
	return "anonymous"
}

// readBody reads and parses the request's definition. A malformed one is
// answered with a 400 and reported as !ok; so is a definition of another
// type when a Clouddriver URL is set: it is proxied there (handled).
func (s *Service) readBody(w http.ResponseWriter, r *http.Request) (b body, raw []byte, ok bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(raw) > maxBody {
		writeError(w, r, http.StatusBadRequest, "Required request body is missing or larger than %d bytes", maxBody)
		return body{}, nil, false
	}
	b, err = parseBody(raw)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "%s", unwrapBad(err))
		return body{}, nil, false
	}
	if b.typ != KubernetesType && s.prox != nil {
		s.proxy(w, r, raw)
		return body{}, nil, false
	}
	return b, raw, true
}

func unwrapBad(err error) string {
	msg := err.Error()
	prefix := errBadBody.Error() + ": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}

// kubernetes validates a Kubernetes definition for agent management:
// Clouddriver-style 400s for what would make it unusable; nothing has been
// written when it answers.
func (s *Service) kubernetes(w http.ResponseWriter, r *http.Request, b body) (dynaccounts.Definition, bool) {
	d, err := b.definition()
	if err == nil {
		switch f := plainKubeconfig(d); f {
		case credentials.FieldKubeconfigContents:
			err = errors.New("kubeconfigContents: inline kubeconfig content would be stored in plain text in the accounts table; " +
				"give a secret reference (encrypted:... / encryptedFile:...) or kubeconfigFile instead")
		case credentials.FieldKubeconfigFile, credentials.FieldKubeconfigAgent:
			err = fmt.Errorf("%s: holds kubeconfig content, not a path or secret reference, and would be stored in plain text "+
				"in the accounts table; give a secret reference (encrypted:... / encryptedFile:...) or a path instead", f)
		}
	}
	if err == nil {
		err = s.life.CheckCredentials(r.Context(), d)
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "Invalid account definition (name: %s): %s", b.name, unwrapBad(err))
		return dynaccounts.Definition{}, false
	}
	return d, true
}

// other validates a definition of another type that is stored here (no
// Clouddriver URL is set): it is stored as it is, so a kubeconfig in any
// of its fields is refused with a Clouddriver-style 400.
func (s *Service) other(w http.ResponseWriter, r *http.Request, b body) bool {
	if p := b.otherKubeconfig(); p != "" {
		writeError(w, r, http.StatusBadRequest, "Invalid account definition (name: %s): %s: holds kubeconfig content, "+
			"which would be stored in plain text in the accounts table", b.name, p)
		return false
	}
	return true
}

// post is POST /credentials: create; an existing account is a 400.
func (s *Service) post(w http.ResponseWriter, r *http.Request) {
	b, _, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var d dynaccounts.Definition
	if b.typ == KubernetesType {
		if d, ok = s.kubernetes(w, r, b); !ok {
			return
		}
		if _, err := s.st.GetAccount(r.Context(), b.name); err == nil {
			writeError(w, r, http.StatusBadRequest, "Cannot create an account which already exists (name: %s)", b.name)
			return
		}
	} else if !s.other(w, r, b) {
		return
	}
	err := s.db.Write(r.Context(), createOnly, b.name, b.typ, b.bytes(), user(r), s.cfg.Now())
	if errors.Is(err, errExists) {
		writeError(w, r, http.StatusBadRequest, "Cannot create an account which already exists (name: %s)", b.name)
		return
	}
	s.finish(w, r, b, d, err, true)
}

// save is PUT /credentials (Clouddriver 1.29+): create or update.
func (s *Service) save(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, "", upsert)
}

// put is PUT /credentials/{accountName}: update an existing account.
func (s *Service) put(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, r.PathValue("accountName"), updateOnly)
}

func (s *Service) write(w http.ResponseWriter, r *http.Request, pathName string, mode writeMode) {
	b, _, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if mode == updateOnly && pathName != b.name {
		writeError(w, r, http.StatusBadRequest, "Mismatched account names. URI value: %s. Request body value: %s.", pathName, b.name)
		return
	}
	var d dynaccounts.Definition
	if b.typ == KubernetesType {
		if d, ok = s.kubernetes(w, r, b); !ok {
			return
		}
		// Refused before Clouddriver's table is written: an account
		// being deleted keeps the definition it is being deleted with.
		if a, err := s.st.GetAccount(r.Context(), b.name); err == nil && a.State == dynaccounts.Deleting {
			writeError(w, r, http.StatusConflict, "Cannot save account %s: it is being deleted", b.name)
			return
		}
	} else if !s.other(w, r, b) {
		return
	}
	err := s.db.Write(r.Context(), mode, b.name, b.typ, b.bytes(), user(r), s.cfg.Now())
	if errors.Is(err, errNotFound) {
		writeError(w, r, http.StatusBadRequest, "Cannot update an account which does not exist (name: %s)", b.name)
		return
	}
	s.finish(w, r, b, d, err, false)
}

// finish puts a Kubernetes account that was written to Clouddriver's table
// under agent management and answers with the definition, as Clouddriver
// does. created: the request was a creation (POST).
func (s *Service) finish(w http.ResponseWriter, r *http.Request, b body, d dynaccounts.Definition, err error, created bool) {
	if err == nil && b.typ == KubernetesType {
		err = s.manage(r.Context(), d, created)
	}
	if err != nil {
		s.cfg.Log.Error("clouddriver accounts: /credentials", "method", r.Method, "account", b.name, "err", err)
		code := http.StatusInternalServerError
		if errors.Is(err, dynaccounts.ErrDeleting) {
			code = http.StatusConflict
		}
		writeError(w, r, code, "Cannot save account %s: %s", b.name, publicReason(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.bytes())
}

// manage records d in kubesvc_accounts: a new account is created and
// activated; an existing one takes the new definition (and reaches its
// agent at once if served; POST also activates it).
func (s *Service) manage(ctx context.Context, d dynaccounts.Definition, activate bool) error {
	var err error
	if activate {
		_, err = s.life.Activate(ctx, d)
	} else if err = s.life.Update(ctx, d); errors.Is(err, store.ErrNotFound) {
		_, err = s.life.Activate(ctx, d)
	}
	if err != nil {
		return err
	}
	row, err := s.db.Get(ctx, d.Name)
	if err != nil {
		return err
	}
	return s.st.PutMigratedAccount(ctx, store.MigratedAccount{Name: d.Name, SourceModifiedAt: row.LastModifiedAt})
}

// publicReason is what a 5xx tells the client: ErrDeleting as it is,
// database details only in the log.
func publicReason(err error) string {
	if errors.Is(err, dynaccounts.ErrDeleting) {
		return dynaccounts.ErrDeleting.Error()
	}
	return "internal error (see the control plane's log)"
}

// delete is DELETE /credentials/{accountName}: the Clouddriver row goes
// (history marked deleted) and the account is deactivated and deleted.
func (s *Service) delete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("accountName")
	ctx := r.Context()
	row, err := s.db.Get(ctx, name)
	switch {
	case err == nil && row.Type != KubernetesType && s.prox != nil:
		s.proxy(w, r, nil)
		return
	case err == nil:
		err = s.db.Delete(ctx, name, s.cfg.Now())
	}
	cdMissing := errors.Is(err, errNotFound)
	if err != nil && !cdMissing {
		s.cfg.Log.Error("clouddriver accounts: DELETE /credentials", "account", name, "err", err)
		writeError(w, r, http.StatusInternalServerError, "Unable to delete credentials definition with name '%s'", name)
		return
	}
	err = s.life.Delete(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if cdMissing {
			if s.prox != nil {
				s.proxy(w, r, nil) // perhaps one Clouddriver knows
				return
			}
			writeError(w, r, http.StatusNotFound, "No credentials definition found with name '%s'", name)
			return
		}
		err = nil
	}
	if err == nil {
		err = s.st.DeleteMigratedAccount(ctx, name)
	}
	if err != nil {
		s.cfg.Log.Error("clouddriver accounts: DELETE /credentials", "account", name, "err", err)
		writeError(w, r, http.StatusInternalServerError, "Unable to delete credentials definition with name '%s'", name)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// getTwo serves the GETs of two path segments.
func (s *Service) getTwo(w http.ResponseWriter, r *http.Request) {
	switch first, second := r.PathValue("first"), r.PathValue("second"); {
	case first == "type":
		s.listByType(w, r, second)
	case second == "history":
		s.history(w, r, first)
	default:
		s.passThrough(w, r)
	}
}

// listByType is GET /credentials/type/{accountType}?limit=&startingAccountName=.
func (s *Service) listByType(w http.ResponseWriter, r *http.Request, typ string) {
	if typ != KubernetesType && s.prox != nil {
		s.proxy(w, r, nil)
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, r, http.StatusBadRequest, "Failed to convert value of type 'java.lang.String' to required type 'int'; For input string: %q", v)
			return
		}
		limit = n
	}
	rows, err := s.db.page(r.Context(), typ, r.URL.Query().Get("startingAccountName"), true, limit)
	if err != nil {
		s.cfg.Log.Error("clouddriver accounts: GET /credentials/type", "type", typ, "err", err)
		writeError(w, r, http.StatusInternalServerError, "Cannot list accounts of type %s", typ)
		return
	}
	out := make([]json.RawMessage, 0, len(rows))
	for _, row := range rows {
		if json.Valid(row.Body) {
			out = append(out, row.Body)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// history is GET /credentials/{accountName}/history: Clouddriver's
// revisions, newest first.
func (s *Service) history(w http.ResponseWriter, r *http.Request, name string) {
	revs, err := s.db.History(r.Context(), name)
	if err != nil {
		s.cfg.Log.Error("clouddriver accounts: history", "err", err)
		writeError(w, r, http.StatusInternalServerError, "Cannot read the account's history")
		return
	}
	type revision struct {
		Version   int             `json:"version"`
		Timestamp int64           `json:"timestamp"`
		Account   json.RawMessage `json:"account"`
	}
	out := make([]revision, 0, len(revs))
	for _, v := range revs {
		acct := json.RawMessage("null")
		if v.Body != nil && json.Valid(v.Body) {
			acct = v.Body
		}
		out = append(out, revision{Version: v.Version, Timestamp: v.LastModifiedAt, Account: acct})
	}
	writeJSON(w, http.StatusOK, out)
}

// passThrough answers the rest of /credentials: proxied to Clouddriver
// when its URL is set.
func (s *Service) passThrough(w http.ResponseWriter, r *http.Request) {
	if s.prox == nil {
		writeError(w, r, http.StatusNotFound, "%s %s is served by Clouddriver (set kubesvc.dynamicAccounts.interceptor.clouddriverUrl to proxy it)", r.Method, r.URL.Path)
		return
	}
	s.proxy(w, r, nil)
}

// proxy forwards r to Clouddriver, with raw as its body when it was read.
func (s *Service) proxy(w http.ResponseWriter, r *http.Request, raw []byte) {
	if raw != nil {
		r.Body = io.NopCloser(bytes.NewReader(raw))
		r.ContentLength = int64(len(raw))
	}
	s.prox.ServeHTTP(w, r)
}
