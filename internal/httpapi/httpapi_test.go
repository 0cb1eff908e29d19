package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An answer that cannot be encoded is a 500 saying so, not a 200 with a
// cut body.
func TestWriteJSONEncodesFirst(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"manifest": json.RawMessage(`{`)})
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "cannot encode") {
		t.Errorf("%d %s, want a 500 saying it cannot encode", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusAccepted, map[string]int{"a": 1})
	if rec.Code != http.StatusAccepted || rec.Body.String() != "{\"a\":1}\n" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("%d %q %q", rec.Code, rec.Body, rec.Header().Get("Content-Type"))
	}
}
