package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The mux's own 404 and 405 are JSON errors (405 keeping Allow); what the
// handlers answer, and the mux's redirects, are left alone.
func TestMuxErrorsAreJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things", func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, []int{}) })
	mux.HandleFunc("/relay/{path...}", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not here", http.StatusNotFound) // a handler's own plain 404
	})
	h := MuxErrors(mux)
	do := func(method, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec
	}
	for _, c := range []struct {
		method, target string
		code           int
		says, allow    string
	}{
		{"GET", "/thing", http.StatusNotFound, `no endpoint GET "/thing"`, ""},
		{"POST", "/things", http.StatusMethodNotAllowed, `method POST is not allowed on "/things"; allowed: GET, HEAD`, "GET, HEAD"},
	} {
		rec := do(c.method, c.target)
		var e Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != c.code || e.Status != c.code ||
			e.Error != http.StatusText(c.code) || !strings.Contains(e.Message, c.says) ||
			rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %v %q, want a JSON %d saying %q", c.method, c.target, rec.Code, rec.Header(), rec.Body, c.code, c.says)
		}
	}
	if rec := do("GET", "/relay/x"); rec.Code != http.StatusNotFound || rec.Body.String() != "not here\n" {
		t.Errorf("a handler's own 404 changed: %d %q", rec.Code, rec.Body)
	}
	if rec := do("GET", "/things"); rec.Code != http.StatusOK || rec.Body.String() != "[]\n" {
		t.Errorf("GET /things: %d %q", rec.Code, rec.Body)
	}
	if rec := do("GET", "/relay"); rec.Code/100 != 3 || rec.Header().Get("Location") != "/relay/" {
		t.Errorf("GET /relay: %d %v, want the mux's redirect", rec.Code, rec.Header())
	}
}
