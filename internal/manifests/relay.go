package manifests

import (
	"encoding/json"
	"net/http"
	"strings"
)

// maxErrorBody bounds the body of a failed log read kept for the error
// message.
const maxErrorBody = 64 << 10

// relayed is the http.ResponseWriter part of a reader a Pod's log is
// relayed to through the Kubernetes API proxy (propertyReader,
// logReader): the status answered and, for a failed answer, the start of
// its body (the reason).
type relayed struct {
	header http.Header
	code   int
	failed []byte
}

func (r *relayed) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *relayed) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// Flush lets the relay flush; there is nothing to flush.
func (r *relayed) Flush() {}

// ok: nothing answered yet, or the log is being read (a 204 is a Pod
// without a node yet: no log).
func (r *relayed) ok() bool { return r.code == 0 || r.code >= 200 && r.code < 300 }

// keepFailed keeps the start of b, part of a failed answer's body, and
// reports whether it was one (a log's part otherwise).
func (r *relayed) keepFailed(b []byte) bool {
	r.WriteHeader(http.StatusOK)
	if r.ok() {
		return false
	}
	if room := maxErrorBody - len(r.failed); room > 0 {
		r.failed = append(r.failed, b[:min(len(b), room)]...)
	}
	return true
}

// reason is a failed answer's message: the Kubernetes Status's, or its body.
func (r *relayed) reason() string {
	var st struct{ Message string }
	if json.Unmarshal(r.failed, &st) == nil && st.Message != "" {
		return st.Message
	}
	return strings.TrimSpace(string(r.failed))
}
