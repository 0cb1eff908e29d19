package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Unknown and repeated query parameters are a 400 naming them, listing
// the allowed ones.
func TestQueryRefusesUnknownParameters(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, "ok") }
	for _, c := range []struct {
		h      http.HandlerFunc
		target string
		code   int
		says   string
	}{
		{Query(ok, "page", "limit"), "/x?pgae=2", 400, `unknown query parameter "pgae"; allowed: page, limit`},
		{Query(ok, "page", "limit"), "/x?page=1&page=2", 400, `query parameter "page" given 2 times`},
		{Query(ok), "/x?b=1&a=1", 400, `unknown query parameter "a"; this endpoint takes none`},
		{Query(ok, "page", "limit"), "/x?page=1&limit=", 200, "ok"},
		{Query(ok), "/x", 200, "ok"},
	} {
		rec := httptest.NewRecorder()
		c.h(rec, httptest.NewRequest("GET", c.target, nil))
		var e Error
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != c.code || !strings.Contains(e.Message+rec.Body.String(), c.says) {
			t.Errorf("%s: %d %s, want %d saying %q", c.target, rec.Code, rec.Body, c.code, c.says)
		}
	}
}
