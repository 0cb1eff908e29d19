package kubeproxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		path string
		want Target
	}{
		{"/version", Target{Discovery: true}},
		{"/api", Target{Discovery: true}},
		{"/api/v1", Target{Discovery: true, Version: "v1"}},
		{"/apis/apps", Target{Discovery: true, Group: "apps"}},
		{"/apis/apps/v1/", Target{Discovery: true, Group: "apps", Version: "v1"}},
		{"/openapi/v3/apis/apps/v1", Target{Discovery: true}},
		{"/api/v1/pods", Target{Version: "v1", Resource: "pods"}},
		{"/api/v1/namespaces", Target{Version: "v1", Resource: "namespaces"}},
		{"/api/v1/namespaces/ns", Target{Version: "v1", Namespace: "ns", Resource: "namespaces", Name: "ns"}},
		{"/api/v1/namespaces/ns/finalize", Target{Version: "v1", Namespace: "ns", Resource: "namespaces", Name: "ns", Subresource: "finalize"}},
		{"/api/v1/namespaces/ns/secrets", Target{Version: "v1", Namespace: "ns", Resource: "secrets"}},
		{"/api/v1/namespaces/ns/pods/p/log", Target{Version: "v1", Namespace: "ns", Resource: "pods", Name: "p", Subresource: "log"}},
		{"/api/v1/watch/namespaces/ns/secrets", Target{Version: "v1", Namespace: "ns", Resource: "secrets", Watch: true}},
		{"/api/v1/watch/secrets", Target{Version: "v1", Resource: "secrets", Watch: true}},
		{"/apis/apps/v1/namespaces/ns/deployments/d/scale", Target{Group: "apps", Version: "v1", Namespace: "ns", Resource: "deployments", Name: "d", Subresource: "scale"}},
	} {
		got, r := Parse(c.path)
		if r != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.path, got, r, c.want)
		}
	}
	for _, c := range []struct {
		path string
		code int
	}{
		{"", http.StatusBadRequest},
		{"api/v1", http.StatusBadRequest},
		{"/api/../metrics", http.StatusBadRequest},
		{"/api//v1", http.StatusBadRequest},
		{"/api/v1/./secrets", http.StatusBadRequest},
		{"/", http.StatusForbidden},
		{"/metrics", http.StatusForbidden},
		{"/logs/x", http.StatusForbidden},
		{"/debug/pprof/", http.StatusForbidden},
		{"/version/x", http.StatusForbidden},
		{"/openapi/v9", http.StatusForbidden},
		{"/api/v1/namespaces/ns/pods/p/log/extra", http.StatusNotFound},
	} {
		if got, r := Parse(c.path); r == nil || r.Code != c.code {
			t.Errorf("Parse(%q) = %+v, %v; want a %d refusal", c.path, got, r, c.code)
		}
	}
}

func TestCheck(t *testing.T) {
	parse := func(p string) Target {
		t.Helper()
		tg, r := Parse(p)
		if r != nil {
			t.Fatalf("Parse(%q): %v", p, r)
		}
		return tg
	}
	for _, c := range []struct {
		method, path    string
		writes, upgrade bool
		code            int // 0: relayed
		says            string
	}{
		{"GET", "/api/v1/namespaces/ns/pods", false, false, 0, ""},
		{"HEAD", "/api/v1/namespaces/ns/pods/p/log", false, false, 0, ""},
		{"POST", "/api/v1/namespaces/ns/configmaps", true, false, 0, ""},
		{"POST", "/api/v1/namespaces/ns/configmaps", false, false, 403, "relays only reads (the.key)"},
		{"PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", false, false, 403, "the.key"},
		{"DELETE", "/api/v1/namespaces/ns", true, false, 0, ""},
		{"GET", "/api/v1/namespaces/ns/secrets/s", true, false, 403, "Secret data never leaves the agent"},
		{"GET", "/api/v1/secrets", true, false, 403, "Secrets are not relayed"},
		{"GET", "/api/v1/watch/namespaces/ns/secrets", true, false, 403, "Secrets are not relayed"},
		{"POST", "/api/v1/namespaces/ns/secrets", true, false, 403, "Secrets are not relayed"},
		// A custom resource named secrets in another group is not a Secret.
		{"GET", "/apis/example.com/v1/namespaces/ns/secrets", false, false, 0, ""},
		{"POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token", true, false, 403, "tokens are not relayed"},
		{"GET", "/api/v1/namespaces/ns/serviceaccounts/sa", false, false, 0, ""},
		// exec, attach, port-forward: upgrades, and only with writes.
		{"GET", "/api/v1/namespaces/ns/pods/p/exec", true, true, 0, ""},
		{"POST", "/api/v1/namespaces/ns/pods/p/attach", true, true, 0, ""},
		{"GET", "/api/v1/namespaces/ns/pods/p/portforward", true, true, 0, ""},
		{"GET", "/api/v1/namespaces/ns/pods/p/exec", false, true, 403, "relayed only with writes (the.key)"},
		{"GET", "/api/v1/namespaces/ns/pods/p/portforward", false, true, 403, "relayed only with writes"},
		{"POST", "/api/v1/namespaces/ns/pods/p/exec", true, false, 400, "needs a connection upgrade"},
		{"GET", "/api/v1/namespaces/ns/pods", true, true, 400, "only for pods/exec"},
		{"GET", "/api/v1/namespaces/ns/secrets/s", true, true, 403, "Secrets are not relayed"},
		{"GET", "/apis/example.com/v1/namespaces/ns/pods/p/exec", true, true, 400, "only for pods/exec"},
		{"GET", "/api/v1/namespaces/ns/services/s/proxy", true, false, 403, "own proxy"},
		{"CONNECT", "/api/v1/pods", true, false, 405, "not relayed"},
		{"OPTIONS", "/api/v1/pods", true, false, 405, "not relayed"},
	} {
		r := Check(c.method, parse(c.path), c.writes, c.upgrade, "the.key")
		switch {
		case c.code == 0 && r != nil:
			t.Errorf("%s %s: refused %v, want relayed", c.method, c.path, r)
		case c.code != 0 && (r == nil || r.Code != c.code || !strings.Contains(r.Message, c.says)):
			t.Errorf("%s %s: %+v, want %d saying %q", c.method, c.path, r, c.code, c.says)
		}
	}
}

func TestIsUpgrade(t *testing.T) {
	for _, c := range []struct {
		connection, upgrade string
		want                bool
	}{
		{"Upgrade", "websocket", true},
		{"keep-alive, upgrade", "SPDY/3.1", true},
		{"Upgrade", "", false},
		{"keep-alive", "websocket", false},
		{"", "", false},
	} {
		h := http.Header{}
		if c.connection != "" {
			h.Set("Connection", c.connection)
		}
		if c.upgrade != "" {
			h.Set("Upgrade", c.upgrade)
		}
		if got := IsUpgrade(h); got != c.want {
			t.Errorf("IsUpgrade(Connection %q, Upgrade %q) = %v", c.connection, c.upgrade, got)
		}
	}
}

// client-go reads a refusal as the error of its kind.
func TestStatusIsAKubernetesError(t *testing.T) {
	var st metav1.Status
	if err := json.Unmarshal(Status(http.StatusForbidden, "no"), &st); err != nil {
		t.Fatal(err)
	}
	err := &apierrors.StatusError{ErrStatus: st}
	if !apierrors.IsForbidden(err) || st.Kind != "Status" || st.Message != "no" || st.Code != 403 {
		t.Errorf("Status(403) = %+v", st)
	}
	if err := json.Unmarshal(Status(http.StatusBadGateway, "x"), &st); err != nil || st.Reason != metav1.StatusReasonInternalError {
		t.Errorf("Status(502) = %+v %v", st, err)
	}
}

func TestHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Bearer stolen")
	h.Set("Impersonate-User", "admin")
	h.Add("Impersonate-Group", "system:masters")
	h.Set("Cookie", "c")
	h.Set("Accept", "application/json")
	h.Set("Content-Type", "application/merge-patch+json")
	got := http.Header{}
	SetHeaders(got, RequestHeaders(h, false), func(n string) bool { return AllowedRequestHeader(n, false) })
	if len(got) != 2 || got.Get("Accept") != "application/json" || got.Get("Content-Type") != "application/merge-patch+json" {
		t.Errorf("relayed request headers: %v", got)
	}
	// The receiving end filters again, whatever a sender put in.
	got = http.Header{}
	SetHeaders(got, []*kubesvcv1.Header{{Name: "authorization", Values: []string{"x"}}, {Name: "accept", Values: []string{"a"}}, {Name: "upgrade", Values: []string{"websocket"}}}, func(n string) bool { return AllowedRequestHeader(n, false) })
	if len(got) != 1 || got.Get("Accept") != "a" {
		t.Errorf("headers set from a message: %v", got)
	}

	resp := http.Header{}
	resp.Set("Content-Type", "application/json")
	resp.Set("Audit-Id", "a1")
	resp.Set("Content-Length", "10")
	resp.Set("Transfer-Encoding", "chunked")
	resp.Set("Connection", "close")
	got = http.Header{}
	SetHeaders(got, ResponseHeaders(resp, false), func(n string) bool { return AllowedResponseHeader(n, false) })
	if len(got) != 2 || got.Get("Audit-Id") != "a1" || got.Get("Content-Type") != "application/json" {
		t.Errorf("relayed response headers: %v", got)
	}
	// An upgrade's handshake crosses; credentials still do not.
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", "SPDY/3.1")
	h.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	h.Set("Sec-WebSocket-Protocol", "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.c2VjcmV0, v4.channel.k8s.io")
	got = http.Header{}
	SetHeaders(got, RequestHeaders(h, true), func(n string) bool { return AllowedRequestHeader(n, true) })
	// Connection is the agent's to write; the bearer subprotocol is a
	// client credential.
	if got.Get("Upgrade") != "SPDY/3.1" || got.Get("Connection") != "" || got.Get("X-Stream-Protocol-Version") == "" || got.Get("Authorization") != "" || got.Get("Impersonate-User") != "" ||
		got.Get("Sec-Websocket-Protocol") != "v5.channel.k8s.io, v4.channel.k8s.io" {
		t.Errorf("relayed upgrade request headers: %v", got)
	}
	resp.Set("Upgrade", "SPDY/3.1")
	got = http.Header{}
	SetHeaders(got, ResponseHeaders(resp, true), func(n string) bool { return AllowedResponseHeader(n, true) })
	if got.Get("Upgrade") != "SPDY/3.1" || got.Get("Connection") != "close" || got.Get("Content-Length") != "" {
		t.Errorf("relayed 101 headers: %v", got)
	}
}
