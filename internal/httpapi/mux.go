package httpapi

import "net/http"

// MuxErrors wraps mux so that the answers mux gives itself, to a path it
// routes nowhere (404) or a method the path does not take (405, with its
// Allow header), are JSON errors like the handlers' instead of net/http's
// plain text. What the handlers answer, and mux's redirects, pass
// unchanged.
func MuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			w = &muxErrorWriter{ResponseWriter: w, r: r}
		}
		mux.ServeHTTP(w, r)
	})
}

// muxErrorWriter answers a 404 or 405 with a JSON error and drops the
// plain-text body written after it.
type muxErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	replied bool
}

func (w *muxErrorWriter) WriteHeader(code int) {
	switch code {
	case http.StatusNotFound:
		w.replied = true
		WriteError(w.ResponseWriter, code, "no endpoint %s %q (see docs/rest-api.md)", w.r.Method, w.r.URL.Path)
	case http.StatusMethodNotAllowed:
		w.replied = true
		allow := w.Header().Get("Allow")
		WriteError(w.ResponseWriter, code, "method %s is not allowed on %q; allowed: %s", w.r.Method, w.r.URL.Path, allow)
	default:
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *muxErrorWriter) Write(b []byte) (int, error) {
	if w.replied {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *muxErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
