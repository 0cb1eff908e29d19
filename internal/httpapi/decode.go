package httpapi

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// DecodeError describes an error of encoding/json met decoding a request
// body, for a 400 message, in JSON's words rather than Go's (no Go type or
// struct names):
//
//	<path>: expected <string|number|boolean|array|object>, got <what the body has>
//	<path>: malformed JSON at byte N: <what is wrong>
//
// path names the decoded value within the body: "" for the body itself
// (named "body" when nothing deeper is known), "[0].zoneId" for a field
// decoded on its own. The path encoding/json records below it (struct
// fields; not array indices or map keys) is appended with a dot. A body cut
// short, too large (http.MaxBytesReader) or empty, and an unknown field
// (json.Decoder.DisallowUnknownFields), are described too. The error
// returned wraps err.
func DecodeError(path string, err error) error {
	name := func(field string) string {
		switch {
		case path == "" && field == "":
			return "body"
		case path == "":
			return field
		case field == "":
			return path
		}
		return path + "." + field
	}
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
		mb *http.MaxBytesError
	)
	var msg string
	switch {
	case errors.As(err, &te):
		msg = fmt.Sprintf("%s: expected %s, got %s", name(te.Field), expected(te), got(te.Value))
	case errors.As(err, &se) && se.Offset == 0:
		msg = name("") + ": empty; expected JSON"
	case errors.As(err, &se):
		msg = fmt.Sprintf("%s: malformed JSON at byte %d: %s", name(""), se.Offset, se.Error())
	case errors.As(err, &mb):
		msg = fmt.Sprintf("%s: larger than %d bytes", name(""), mb.Limit)
	case errors.Is(err, io.EOF): // json.Decoder on an empty body
		msg = name("") + ": empty; expected JSON"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = name("") + ": malformed JSON: it ends before the value does"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			field = strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		msg = name(field) + ": unknown field"
	default:
		msg = name("") + ": " + strings.TrimPrefix(err.Error(), "json: ")
	}
	return &decodeError{msg: msg, err: err}
}

type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// expected names the JSON type a Go type decodes from.
func expected(te *json.UnmarshalTypeError) string {
	t := te.Type
	if t == nil {
		return "another JSON type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.Number]() {
		return "number"
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) && t.Kind() != reflect.Slice && t.Kind() != reflect.Map {
		return "string"
	}
	// A number out of the type's range, or not an integer.
	outOfRange := strings.HasPrefix(te.Value, "number ")
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if outOfRange {
			bits := t.Bits()
			return fmt.Sprintf("number (an integer from %d to %d)", int64(-1)<<(bits-1), int64(math.MaxInt64>>(64-bits)))
		}
		return "number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if outOfRange {
			return fmt.Sprintf("number (an integer from 0 to %d)", uint64(math.MaxUint64>>(64-t.Bits())))
		}
		return "number"
	case reflect.Float32, reflect.Float64:
		if outOfRange {
			return "number (within the range of floating-point numbers)"
		}
		return "number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && t != reflect.TypeFor[json.RawMessage]() {
			return "string (base64)"
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "another JSON type"
}

// got names the JSON value encoding/json describes as v ("bool", "number",
// "number 1.5", "string", "array", "object").
func got(v string) string {
	switch {
	case v == "bool":
		return "boolean"
	case strings.HasPrefix(v, "number "):
		return v
	case v == "":
		return "another JSON type"
	}
	return v
}
