package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// decodeDescription decodes a JSON object into dst, turning every decoding
// problem into a ValidationError that names the field.
func decodeDescription(payload []byte, dst any) error {
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 {
		return invalid("", "empty description")
	}
	if payload[0] != '{' {
		return invalid("", "description must be a JSON object")
	}
	if err := json.Unmarshal(payload, dst); err != nil {
		return jsonError("", err)
	}
	return nil
}

// jsonError describes a decoding error as a ValidationError under parent.
func jsonError(parent string, err error) error {
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
	)
	switch {
	case errors.As(err, &te):
		return &ValidationError{Field: joinField(parent, te.Field), Message: fmt.Sprintf("must be %s, got a JSON %s", article(te.Type.Kind().String()), te.Value), Err: err}
	case errors.As(err, &se):
		return &ValidationError{Field: parent, Message: fmt.Sprintf("malformed JSON at offset %d: %v", se.Offset, se), Err: err}
	}
	return &ValidationError{Field: parent, Message: "malformed JSON: " + err.Error(), Err: err}
}

func article(kind string) string {
	switch kind {
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	case "int", "int64", "int32":
		return "an integer"
	case "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	}
	return "a " + kind
}

// typeError is what the lenient scalar types below return for a value they
// cannot take; encoding/json fills in the field path.
func typeError(data []byte, want reflect.Type) error {
	v := "value"
	switch s := strings.TrimSpace(string(data)); {
	case strings.HasPrefix(s, `"`):
		v = "string " + s
	case strings.HasPrefix(s, "{"):
		v = "object"
	case strings.HasPrefix(s, "["):
		v = "array"
	case s == "true" || s == "false":
		v = "boolean"
	default:
		v = "number " + s
	}
	return &json.UnmarshalTypeError{Value: v, Type: want}
}

// optBool is an optional boolean that also accepts "true"/"false" strings,
// as Jackson does for Clouddriver.
type optBool struct {
	set bool
	v   bool
}

func (b *optBool) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	if s == "null" {
		*b = optBool{}
		return nil
	}
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseBool(s)
	if err != nil {
		return typeError(data, reflect.TypeFor[bool]())
	}
	*b = optBool{set: true, v: v}
	return nil
}

// or returns the value, or def when unset.
func (b optBool) or(def bool) bool {
	if b.set {
		return b.v
	}
	return def
}

// optInt is an optional integer that also accepts numeric strings.
type optInt struct {
	set bool
	v   int64
}

func (n *optInt) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	if s == "null" {
		*n = optInt{}
		return nil
	}
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return typeError(data, reflect.TypeFor[int64]())
		}
		v = int64(f)
	}
	*n = optInt{set: true, v: v}
	return nil
}

// decodeObject decodes raw JSON into a map with integers as int64, as
// unstructured objects need them.
func decodeObject(field string, raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, invalid(field, "required")
	}
	if raw[0] != '{' {
		return nil, invalid(field, "must be a JSON object")
	}
	var m map[string]any
	if err := utiljson.Unmarshal(raw, &m); err != nil {
		return nil, jsonError(field, err)
	}
	return m, nil
}

// decodeAny decodes raw JSON (object or list) with integers as int64.
func decodeAny(field string, raw json.RawMessage) (any, error) {
	var v any
	if err := utiljson.Unmarshal(raw, &v); err != nil {
		return nil, jsonError(field, err)
	}
	return v, nil
}

// atoiStrict parses a non-negative decimal integer.
func atoiStrict(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a non-negative integer: %q", s)
	}
	return n, nil
}
