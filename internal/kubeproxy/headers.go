package kubeproxy

import (
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// requestHeaders are the client headers relayed to the API server: content
// negotiation and preconditions. Credentials (Authorization, cookies) and
// impersonation never are: the agent's own credentials authenticate.
var requestHeaders = []string{
	"Accept", "Accept-Encoding", "Content-Type", "Content-Encoding", "User-Agent",
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
}

// upgradeHeaders are relayed too for a connection upgrade: the handshake
// of WebSocket and of SPDY (Kubernetes' X-Stream-Protocol-Version). The
// agent writes Connection itself.
var upgradeHeaders = []string{
	"Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol",
	"Sec-Websocket-Accept", "X-Stream-Protocol-Version",
}

// bearerProtocol prefixes the WebSocket subprotocol that carries a bearer
// token (Kubernetes' way to authenticate browsers' WebSockets): a client
// credential, never relayed.
const bearerProtocol = "base64url.bearer.authorization.k8s.io."

// RequestHeaders returns the headers of h the proxy relays; upgrade adds
// the upgrade handshake's.
func RequestHeaders(h http.Header, upgrade bool) []*kubesvcv1.Header {
	var out []*kubesvcv1.Header
	add := func(names []string) {
		for _, name := range names {
			v := slices.Clone(h.Values(name))
			if name == "Sec-Websocket-Protocol" {
				v = withoutBearer(v)
			}
			if len(v) > 0 {
				out = append(out, &kubesvcv1.Header{Name: name, Values: v})
			}
		}
	}
	add(requestHeaders)
	if upgrade {
		add(upgradeHeaders)
	}
	return out
}

// hopByHop are the response headers of one connection, not relayed (the
// control plane frames the body itself: Content-Length goes too).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

// ResponseHeaders returns the headers of an API server answer to relay
// (upgraded: a 101, whose Connection and Upgrade headers are relayed
// too). Values that are not UTF-8 are left out: the message carrying them
// would not encode (HTTP allows other bytes; the Kubernetes API never
// sends them).
func ResponseHeaders(h http.Header, upgraded bool) []*kubesvcv1.Header {
	var out []*kubesvcv1.Header
	for name, v := range h {
		if !AllowedResponseHeader(http.CanonicalHeaderKey(name), upgraded) || !utf8.ValidString(name) {
			continue
		}
		v = slices.DeleteFunc(slices.Clone(v), func(s string) bool { return !utf8.ValidString(s) })
		if len(v) > 0 {
			out = append(out, &kubesvcv1.Header{Name: name, Values: v})
		}
	}
	slices.SortFunc(out, func(a, b *kubesvcv1.Header) int {
		switch {
		case a.GetName() < b.GetName():
			return -1
		case a.GetName() > b.GetName():
			return 1
		}
		return 0
	})
	return out
}

// SetHeaders adds hs to h, keeping only allowed (by canonical name) when
// allowed is not nil; the receiving end filters again.
func SetHeaders(h http.Header, hs []*kubesvcv1.Header, allowed func(string) bool) {
	for _, x := range hs {
		name := http.CanonicalHeaderKey(x.GetName())
		if allowed != nil && !allowed(name) {
			continue
		}
		for _, v := range x.GetValues() {
			h.Add(name, v)
		}
	}
}

// AllowedRequestHeader reports whether a relayed request may carry name
// (canonical); upgrade: a connection upgrade.
func AllowedRequestHeader(name string, upgrade bool) bool {
	return slices.Contains(requestHeaders, name) || upgrade && slices.Contains(upgradeHeaders, name)
}

// AllowedResponseHeader reports whether a relayed answer may carry name
// (canonical); upgraded: a 101 answer to an upgrade.
func AllowedResponseHeader(name string, upgraded bool) bool {
	return !hopByHop[name] || upgraded && (name == "Connection" || name == "Upgrade")
}

// InvalidUTF8 names the first text field of req that is not valid UTF-8
// (protobuf refuses to encode it), "" when all are.
func InvalidUTF8(req *kubesvcv1.ProxyRequest) string {
	switch {
	case !utf8.ValidString(req.GetAccount()):
		return "account"
	case !utf8.ValidString(req.GetPath()):
		return "path"
	case !utf8.ValidString(req.GetQuery()):
		return "query"
	}
	for _, h := range req.GetHeaders() {
		for _, v := range h.GetValues() {
			if !utf8.ValidString(v) {
				return "header " + h.GetName()
			}
		}
	}
	return ""
}

// withoutBearer drops the bearer-token subprotocols from
// Sec-WebSocket-Protocol values (comma-separated lists).
func withoutBearer(values []string) []string {
	var out []string
	for _, v := range values {
		var keep []string
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" && !strings.HasPrefix(p, bearerProtocol) {
				keep = append(keep, p)
			}
		}
		if len(keep) > 0 {
			out = append(out, strings.Join(keep, ", "))
		}
	}
	return out
}
