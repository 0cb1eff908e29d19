// Package httpapi holds what every REST handler of the control plane
// shares: the JSON error body (`{"status", "error", "message"}`, with a
// message naming the offending parameter or field) and JSON answers.
package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Status  int    `json:"status"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// WriteError answers code with a message built from format and args.
func WriteError(w http.ResponseWriter, code int, format string, args ...any) {
	WriteJSON(w, code, Error{Status: code, Error: http.StatusText(code), Message: fmt.Sprintf(format, args...)})
}

// WriteJSON answers code with v encoded as JSON. It encodes before it
// answers: what cannot be encoded (a stored manifest that is not JSON)
// is a 500 saying so, not a 200 with a cut body.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(Error{Status: code, Error: http.StatusText(code), Message: "cannot encode the answer: " + err.Error()})
		w.Header().Del("X-Continue") // no next page of an answer not given
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
