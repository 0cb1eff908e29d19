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

// WriteJSON answers code with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
