package httpapi

import (
	"context"
	"net/http"
)

// ShuttingDown is the message of the 503 a request cut off by the server's
// shutdown gets (Interrupted).
const ShuttingDown = "this control plane is shutting down; retry (another replica can answer)"

// serverKey marks the server's lifetime context in the contexts of the
// requests it serves (ServerContext).
type serverKey struct{}

// ServerContext returns the context to give http.Server.BaseContext: ctx
// (which ends when the server starts shutting down), marked so that a
// request's handler can tell the server stopping (Stopping) from its
// client leaving. Both end the request's context with the same error.
func ServerContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, serverKey{}, ctx)
}

// Stopping reports whether ctx, a request's context, ended because the
// server serving the request is shutting down (its ServerContext ended),
// rather than because the client left. A context that did not come from
// ServerContext never reports stopping.
func Stopping(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	srv, ok := ctx.Value(serverKey{}).(context.Context)
	return ok && srv.Err() != nil
}

// Interrupted reports whether r's context ended, so the handler must stop
// and return. Then, if the server is shutting down (Stopping), it answers
// 503 with the usual JSON error saying so: the client is still there, and
// an empty answer would read as a success. If the client left, there is
// nobody to answer, and it writes nothing.
func Interrupted(w http.ResponseWriter, r *http.Request) bool {
	if r.Context().Err() == nil {
		return false
	}
	if Stopping(r.Context()) {
		WriteError(w, http.StatusServiceUnavailable, "%s", ShuttingDown)
	}
	return true
}
