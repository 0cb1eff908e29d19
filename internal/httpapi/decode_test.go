package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Decoding errors name the field and JSON's types, never Go's.
func TestDecodeErrorSpeaksJSON(t *testing.T) {
	type inner struct {
		Port uint16 `json:"port"`
	}
	type disconnect struct {
		Timestamp int64    `json:"timestamp"`
		Origin    string   `json:"origin"`
		On        bool     `json:"on"`
		Inner     inner    `json:"inner"`
		Names     []string `json:"names"`
		Ratio     float32  `json:"ratio"`
	}
	for _, c := range []struct {
		path, body string
		into       any
		want       string
	}{
		{"", `{"timestamp": "yesterday"}`, &disconnect{}, "timestamp: expected number, got string"},
		{"", `{"timestamp": 1.5}`, &disconnect{}, "timestamp: expected number (an integer from -9223372036854775808 to 9223372036854775807), got number 1.5"},
		{"", `{"origin": 5}`, &disconnect{}, "origin: expected string, got number"},
		{"", `{"on": "yes"}`, &disconnect{}, "on: expected boolean, got string"},
		{"", `{"inner": {"port": 70000}}`, &disconnect{}, "inner.port: expected number (an integer from 0 to 65535), got number 70000"},
		{"", `{"inner": []}`, &disconnect{}, "inner: expected object, got array"},
		{"", `{"names": {}}`, &disconnect{}, "names: expected array, got object"},
		{"", `{"names": ["a", true]}`, &disconnect{}, "names: expected string, got boolean"},
		{"", `{"ratio": 1e300}`, &disconnect{}, "ratio: expected number (within the range of floating-point numbers), got number 1e300"},
		{"", `{"a": 1}`, &[]json.RawMessage{}, "body: expected array, got object"},
		{"[0].zoneId", `123`, new(string), "[0].zoneId: expected string, got number"},
		{"", `{"timestamp": 1,}`, &disconnect{}, "body: malformed JSON at byte 17: invalid character '}' looking for beginning of object key string"},
		{"", ``, &disconnect{}, "body: empty; expected JSON"},
		{"", `{"on": true`, &disconnect{}, "body: malformed JSON at byte 11: unexpected end of JSON input"},
	} {
		err := json.Unmarshal([]byte(c.body), c.into)
		if err == nil {
			t.Fatalf("%s decoded", c.body)
		}
		got := DecodeError(c.path, err)
		if got.Error() != c.want {
			t.Errorf("%s: %q, want %q", c.body, got, c.want)
		}
		if !errors.Is(got, err) {
			t.Errorf("%s: the error does not wrap encoding/json's", c.body)
		}
		if strings.Contains(got.Error(), "Go ") || strings.Contains(got.Error(), "int64") {
			t.Errorf("%s: %q names Go types", c.body, got)
		}
	}
}

// A json.Decoder's own errors: an empty body, one cut short, one too
// large, an unknown field.
func TestDecodeErrorOfADecoder(t *testing.T) {
	decode := func(body string, limit int64, strict bool) error {
		rec := httptest.NewRecorder()
		dec := json.NewDecoder(http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(body)), limit))
		if strict {
			dec.DisallowUnknownFields()
		}
		var v struct {
			A int `json:"a"`
		}
		return DecodeError("", dec.Decode(&v))
	}
	for _, c := range []struct {
		body   string
		limit  int64
		strict bool
		want   string
	}{
		{"", 10, false, "body: empty; expected JSON"},
		{`{"a": `, 10, false, "body: malformed JSON: it ends before the value does"},
		{`{"a": 12345678}`, 5, false, "body: larger than 5 bytes"},
		{`{"b": 1}`, 100, true, "b: unknown field"},
		{`{"a": x}`, 100, false, "body: malformed JSON at byte 7: invalid character 'x' looking for beginning of value"},
	} {
		if got := decode(c.body, c.limit, c.strict); got.Error() != c.want {
			t.Errorf("%q: %q, want %q", c.body, got, c.want)
		}
	}
}
