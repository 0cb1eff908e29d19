package scrub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

const sentinel = "SENTINEL-s3cr3t-VALUE"

var sentinelB64 = base64.StdEncoding.EncodeToString([]byte(sentinel))

// mustJSON encodes v (for building fixtures).
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decode decodes one JSON value with exact numbers.
func decode(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// hasSecret reports whether s carries the sentinel in plain text, as its
// base64 form, or base64-encoded anywhere.
func hasSecret(s string) bool {
	if strings.Contains(s, sentinel) || strings.Contains(s, sentinelB64) {
		return true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil && strings.Contains(string(d), sentinel) {
			return true
		}
	}
	return false
}

// leaks reports where the sentinel appears in raw JSON bytes: in the bytes
// themselves or in any decoded string (so escapes cannot hide it),
// recursively through strings that are themselves JSON (annotations) or
// base64.
func leaks(raw []byte) []string {
	var found []string
	if hasSecret(string(raw)) {
		found = append(found, "raw bytes")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return found
	}
	walkStrings(v, "$", 0, func(path, s string) {
		if hasSecret(s) {
			found = append(found, path)
		}
	})
	return found
}

func walkStrings(v any, path string, depth int, fn func(path, s string)) {
	if depth > 20 {
		return
	}
	switch v := v.(type) {
	case string:
		fn(path, v)
		t := strings.TrimSpace(v)
		if len(t) > 0 && (t[0] == '{' || t[0] == '[' || t[0] == '"') && json.Valid([]byte(t)) {
			dec := json.NewDecoder(strings.NewReader(t))
			dec.UseNumber()
			var inner any
			if dec.Decode(&inner) == nil {
				walkStrings(inner, path+"<json>", depth+1, fn)
			}
		}
	case map[string]any:
		for k, e := range v {
			fn(path+".<key>", k)
			walkStrings(e, path+"."+k, depth+1, fn)
		}
	case []any:
		for i, e := range v {
			walkStrings(e, path+"["+strconv.Itoa(i)+"]", depth+1, fn)
		}
	}
}

// assertNoLeak fails if the sentinel is anywhere in out.
func assertNoLeak(t testing.TB, out []byte) {
	t.Helper()
	if where := leaks(out); len(where) > 0 {
		t.Fatalf("sentinel leaked at %v in:\n%s", where, out)
	}
}

// path walks decoded JSON by keys.
func path(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		v, ok = m[k]
		if !ok {
			return nil, false
		}
	}
	return v, true
}

// lastAppliedSecret is the last-applied annotation of a Secret holding the
// sentinel in data (base64) and stringData (plain), as kubectl writes it.
func lastAppliedSecret(t testing.TB) string {
	return mustJSON(t, map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata":   map[string]any{"annotations": map[string]any{}, "name": "db", "namespace": "prod"},
		"data":       map[string]any{"password": sentinelB64},
		"stringData": map[string]any{"token": sentinel},
		"type":       "Opaque",
	}) + "\n"
}

// secretJSON is a Secret as the API server returns it, with the sentinel in
// data (base64), stringData (plain) and the last-applied annotation (both).
func secretJSON(t testing.TB) []byte {
	return []byte(`{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db","namespace":"prod",` +
		`"uid":"0b6d1a57-5d9e-4c7c-8a6e-8f0e6c1a2b3c","resourceVersion":"42","creationTimestamp":"2024-05-01T10:00:00Z",` +
		`"labels":{"app":"db"},"annotations":{"note":"keep me",` +
		`"kubectl.kubernetes.io/last-applied-configuration":` + mustJSON(t, lastAppliedSecret(t)) + `},` +
		`"managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"v1","time":"2024-05-01T10:00:00Z",` +
		`"fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:password":{},"f:username":{}},"f:type":{}}}]},` +
		`"data":{"password":"` + sentinelB64 + `","username":"` + sentinelB64 + `"},` +
		`"stringData":{"token":"` + sentinel + `"},"type":"Opaque"}`)
}
