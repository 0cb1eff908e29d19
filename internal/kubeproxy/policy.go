package kubeproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Target is what a Kubernetes API path addresses.
type Target struct {
	// Discovery: /version, /api, /apis, a group or group-version's
	// resource list, or /openapi/...
	Discovery bool
	Group     string // "" for the core group (/api/v1)
	Version   string
	Namespace string
	Resource  string
	Name      string
	// Subresource, e.g. "status", "scale", "log", "exec".
	Subresource string
	// Watch: the legacy /watch/ prefix (a ?watch=true query is the other
	// way to watch; both are relayed alike).
	Watch bool
}

// Refusal is a request the proxy does not relay: an HTTP status and a
// message meant for the caller.
type Refusal struct {
	Code    int
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Parse reads an API server path. Paths outside the Kubernetes API
// (/metrics, /logs, /debug...) and paths that are not clean are refused.
func Parse(p string) (Target, *Refusal) {
	if p == "" || p[0] != '/' || strings.Contains(p, "//") || path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
		return Target{}, &Refusal{http.StatusBadRequest, fmt.Sprintf("path %q: not a clean absolute path", p)}
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	var t Target
	switch parts[0] {
	case "version":
		if len(parts) == 1 {
			return Target{Discovery: true}, nil
		}
	case "openapi":
		if len(parts) > 1 && (parts[1] == "v2" || parts[1] == "v3") {
			return Target{Discovery: true}, nil
		}
	case "api":
		if len(parts) <= 2 {
			return Target{Discovery: true, Version: at(parts, 1)}, nil
		}
		t.Version, parts = parts[1], parts[2:]
		return resourcePath(t, parts)
	case "apis":
		if len(parts) <= 3 {
			return Target{Discovery: true, Group: at(parts, 1), Version: at(parts, 2)}, nil
		}
		t.Group, t.Version, parts = parts[1], parts[2], parts[3:]
		return resourcePath(t, parts)
	}
	return Target{}, &Refusal{http.StatusForbidden, fmt.Sprintf("path %q: only the Kubernetes API (/api, /apis, /version, /openapi) is relayed", p)}
}

func at(parts []string, i int) string {
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// resourcePath reads what follows /api/v1 or /apis/group/version, the way
// the API server does: [watch/][namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]].
func resourcePath(t Target, parts []string) (Target, *Refusal) {
	if parts[0] == "watch" {
		t.Watch, parts = true, parts[1:]
	}
	if len(parts) > 1 && parts[0] == "namespaces" {
		t.Namespace = parts[1]
		// namespaces/NS/status and namespaces/NS/finalize are the
		// Namespace's own subresources; anything else is a resource in it.
		if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
			parts = parts[2:]
		}
	}
	if len(parts) == 0 || len(parts) > 3 {
		return Target{}, &Refusal{http.StatusNotFound, "path: not a Kubernetes resource path"}
	}
	t.Resource, t.Name, t.Subresource = parts[0], at(parts, 1), at(parts, 2)
	return t, nil
}

// Methods the proxy relays.
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true,
	http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true,
}

// IsRead reports whether method only reads.
func IsRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// Check refuses what no proxy relays: Secrets and service account tokens
// (Secret data never leaves the agent), the API server's own proxy,
// unknown methods, and, unless writes is set, anything but reads.
// Connection upgrades (upgrade) are relayed only for exec, attach and
// port-forward, and those only with writes: they run commands in pods or
// reach into them. readOnlyKey names the setting that allows writes, for
// the message.
func Check(method string, t Target, writes, upgrade bool, readOnlyKey string) *Refusal {
	if !methods[method] {
		return &Refusal{http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not relayed", method)}
	}
	if t.Group == "" && t.Resource == "secrets" {
		return &Refusal{http.StatusForbidden, "Secrets are not relayed: Secret data never leaves the agent"}
	}
	if t.Group == "" && t.Resource == "serviceaccounts" && t.Subresource == "token" {
		return &Refusal{http.StatusForbidden, "service account tokens are not relayed: credentials never leave the agent"}
	}
	streaming := t.Group == "" && t.Resource == "pods" && (t.Subresource == "exec" || t.Subresource == "attach" || t.Subresource == "portforward")
	switch {
	case t.Subresource == "proxy":
		return &Refusal{http.StatusForbidden, fmt.Sprintf("%s/proxy (the API server's own proxy) is not relayed", t.Resource)}
	case streaming && !writes:
		return &Refusal{http.StatusForbidden, fmt.Sprintf("pods/%s runs in or reaches into a pod: relayed only with writes (%s)", t.Subresource, readOnlyKey)}
	case streaming && !upgrade:
		return &Refusal{http.StatusBadRequest, fmt.Sprintf("pods/%s needs a connection upgrade (WebSocket or SPDY over HTTP/1.1)", t.Subresource)}
	case upgrade && !streaming:
		return &Refusal{http.StatusBadRequest, "connection upgrades are relayed only for pods/exec, pods/attach and pods/portforward"}
	}
	if !writes && !IsRead(method) {
		return &Refusal{http.StatusForbidden, fmt.Sprintf("method %s: this proxy relays only reads (%s)", method, readOnlyKey)}
	}
	return nil
}

// IsUpgrade reports whether h asks for a connection upgrade.
func IsUpgrade(h http.Header) bool {
	if h.Get("Upgrade") == "" {
		return false
	}
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// reasons maps refusal codes to Kubernetes Status reasons.
var reasons = map[int]metav1.StatusReason{
	http.StatusBadRequest:                  metav1.StatusReasonBadRequest,
	http.StatusForbidden:                   metav1.StatusReasonForbidden,
	http.StatusNotFound:                    metav1.StatusReasonNotFound,
	http.StatusMethodNotAllowed:            metav1.StatusReasonMethodNotAllowed,
	http.StatusRequestEntityTooLarge:       metav1.StatusReasonRequestEntityTooLarge,
	http.StatusRequestHeaderFieldsTooLarge: metav1.StatusReasonBadRequest,
	http.StatusTooManyRequests:             metav1.StatusReasonTooManyRequests,
	http.StatusServiceUnavailable:          metav1.StatusReasonServiceUnavailable,
	http.StatusGatewayTimeout:              metav1.StatusReasonTimeout,
	http.StatusNotImplemented:              metav1.StatusReasonBadRequest,
}

// Status is the body of a refusal or failure: a Kubernetes Status, which
// client-go turns into an error of the right kind (IsForbidden...).
func Status(code int, message string) []byte {
	reason, ok := reasons[code]
	if !ok {
		reason = metav1.StatusReasonInternalError
	}
	b, _ := json.Marshal(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: message, Reason: reason, Code: int32(code),
	})
	return b
}

// WriteStatus answers w with Status(code, message).
func WriteStatus(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(Status(code, message))
}
