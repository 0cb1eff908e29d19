package scrub

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// This file holds the validating JSON scanner that JSON (json.go) walks
// objects with, and the decoder of its slow path.

// decodeObject decodes one JSON object (with optional surrounding
// whitespace) into map[string]any, []any, string, json.Number, bool and nil,
// as encoding/json does with UseNumber, except that a member name repeated
// within one object is an error (ErrDuplicateKey).
func decodeObject(b []byte) (map[string]any, error) {
	sc := scanner{b: b}
	sc.ws()
	if sc.i >= len(b) || b[sc.i] != '{' {
		if err := validate(b); err != nil {
			return nil, err
		}
		return nil, ErrNotObject
	}
	v, err := sc.decode()
	if err != nil {
		return nil, err
	}
	sc.ws()
	if sc.i != len(b) {
		return nil, sc.errorf("data after the object")
	}
	return v.(map[string]any), nil
}

// decode scans and decodes one value at sc.i.
func (sc *scanner) decode() (any, error) {
	if sc.i >= len(sc.b) {
		return nil, sc.errorf("unexpected end")
	}
	switch c := sc.b[sc.i]; {
	case c == '{':
		if err := sc.open(); err != nil {
			return nil, err
		}
		m := make(map[string]any)
		for first := true; ; first = false {
			more, err := sc.next(first, '}')
			if err != nil || !more {
				return m, err
			}
			k, err := sc.text()
			if err != nil {
				return nil, err
			}
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("%w: %q at offset %d", ErrDuplicateKey, k, sc.i)
			}
			if err := sc.colon(); err != nil {
				return nil, err
			}
			if m[k], err = sc.decode(); err != nil {
				return nil, err
			}
		}
	case c == '[':
		if err := sc.open(); err != nil {
			return nil, err
		}
		a := []any{}
		for first := true; ; first = false {
			more, err := sc.next(first, ']')
			if err != nil || !more {
				return a, err
			}
			v, err := sc.decode()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case c == '"':
		return sc.text()
	case c == '-' || c >= '0' && c <= '9':
		start := sc.i
		if err := sc.number(); err != nil {
			return nil, err
		}
		return json.Number(sc.b[start:sc.i]), nil
	case c == 't':
		return true, sc.literal("true")
	case c == 'f':
		return false, sc.literal("false")
	case c == 'n':
		return nil, sc.literal("null")
	}
	return nil, sc.errorf("unexpected character %q", sc.b[sc.i])
}

// text scans a string literal and returns its value, decoded as
// encoding/json does (invalid UTF-8 becomes U+FFFD).
func (sc *scanner) text() (string, error) {
	start := sc.i
	escaped, err := sc.str()
	if err != nil {
		return "", err
	}
	raw := sc.b[start+1 : sc.i-1]
	if !escaped && utf8.Valid(raw) {
		return string(raw), nil
	}
	return unquote(sc.b[start:sc.i]), nil
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// scanner is a validating JSON scanner over b. It accepts exactly what
// encoding/json's Valid accepts.
type scanner struct {
	b     []byte
	i     int
	depth int
	comma int // offset of the comma last consumed by next
}

func (sc *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("scrub: invalid JSON at offset %d: %s", sc.i, fmt.Sprintf(format, args...))
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func (sc *scanner) ws() { sc.i = skipWS(sc.b, sc.i) }

// validate reports whether b is one valid JSON value with optional
// surrounding whitespace.
func validate(b []byte) error {
	sc := scanner{b: b}
	sc.ws()
	if err := sc.value(); err != nil {
		return err
	}
	sc.ws()
	if sc.i != len(b) {
		return sc.errorf("data after the value")
	}
	return nil
}

// value scans one value starting at sc.i (no leading whitespace).
func (sc *scanner) value() error {
	if sc.i >= len(sc.b) {
		return sc.errorf("unexpected end")
	}
	switch c := sc.b[sc.i]; {
	case c == '{':
		if err := sc.open(); err != nil {
			return err
		}
		for first := true; ; first = false {
			more, err := sc.next(first, '}')
			if err != nil || !more {
				return err
			}
			if _, err := sc.str(); err != nil {
				return err
			}
			if err := sc.colon(); err != nil {
				return err
			}
			if err := sc.value(); err != nil {
				return err
			}
		}
	case c == '[':
		if err := sc.open(); err != nil {
			return err
		}
		for first := true; ; first = false {
			more, err := sc.next(first, ']')
			if err != nil || !more {
				return err
			}
			if err := sc.value(); err != nil {
				return err
			}
		}
	case c == '"':
		_, err := sc.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		return sc.number()
	case c == 't':
		return sc.literal("true")
	case c == 'f':
		return sc.literal("false")
	case c == 'n':
		return sc.literal("null")
	}
	return sc.errorf("unexpected character %q", sc.b[sc.i])
}

// open consumes '{' or '['.
func (sc *scanner) open() error {
	sc.depth++
	if sc.depth > maxDepth {
		return sc.errorf("nested too deeply")
	}
	sc.i++
	return nil
}

// next is called after an open bracket (first) or after a member or
// element. It consumes the closing bracket (more is false) or the comma
// before the next member or element, and the whitespace around them.
func (sc *scanner) next(first bool, closing byte) (more bool, err error) {
	sc.ws()
	if sc.i >= len(sc.b) {
		return false, sc.errorf("unexpected end")
	}
	if sc.b[sc.i] == closing {
		sc.i++
		sc.depth--
		return false, nil
	}
	if !first {
		if sc.b[sc.i] != ',' {
			return false, sc.errorf("expected ',' or %q", closing)
		}
		sc.comma = sc.i
		sc.i++
		sc.ws()
	}
	return true, nil
}

// key scans a member name and the colon after it. It returns the name
// (unescaped) if the scan looks for it, else "". It allocates only for names
// with escapes.
func (sc *scanner) key() (string, error) {
	start := sc.i
	escaped, err := sc.str()
	if err != nil {
		return "", err
	}
	var name string
	if escaped {
		name = knownKey([]byte(unquote(sc.b[start:sc.i])))
	} else {
		name = knownKey(sc.b[start+1 : sc.i-1])
	}
	return name, sc.colon()
}

// knownKey returns the name in b if it is one the scan looks for, else "".
// It does not allocate: string(b) in a switch is compared in place.
func knownKey(b []byte) string {
	switch string(b) {
	case "apiVersion":
		return "apiVersion"
	case "kind":
		return "kind"
	case "items":
		return "items"
	case "metadata":
		return "metadata"
	case "managedFields":
		return "managedFields"
	case "annotations":
		return "annotations"
	case LastAppliedAnnotation:
		return LastAppliedAnnotation
	}
	return ""
}

// unquote decodes a JSON string literal already validated by str.
func unquote(lit []byte) string {
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "" // cannot happen for a validated literal
	}
	return s
}

func (sc *scanner) colon() error {
	sc.ws()
	if sc.i >= len(sc.b) || sc.b[sc.i] != ':' {
		return sc.errorf("expected ':'")
	}
	sc.i++
	sc.ws()
	return nil
}

// stringValue scans a value and returns it if it is a string. Without
// escapes the string shares memory with b (no allocation); it is only valid
// while b is not modified and must not be kept beyond the scrub call.
func (sc *scanner) stringValue() (string, bool, error) {
	if sc.i >= len(sc.b) || sc.b[sc.i] != '"' {
		return "", false, sc.value()
	}
	start := sc.i
	escaped, err := sc.str()
	if err != nil {
		return "", false, err
	}
	if escaped {
		return unquote(sc.b[start:sc.i]), true, nil
	}
	if sc.i-start == 2 {
		return "", true, nil
	}
	return unsafe.String(&sc.b[start+1], sc.i-start-2), true, nil
}

// str scans a string literal, which must start at sc.i.
func (sc *scanner) str() (escaped bool, err error) {
	b := sc.b
	if sc.i >= len(b) || b[sc.i] != '"' {
		return false, sc.errorf("expected a string")
	}
	i := sc.i + 1
	for i < len(b) {
		for i < len(b) && plain[b[i]] { // the common bytes, without the switch
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			sc.i = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				sc.i = i
				return false, sc.errorf("unexpected end in string escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					sc.i = i
					return false, sc.errorf("invalid \\u escape")
				}
				i += 6
			default:
				sc.i = i
				return false, sc.errorf("invalid escape")
			}
		case c < 0x20:
			sc.i = i
			return false, sc.errorf("control character in string")
		default:
			i++
		}
	}
	sc.i = i
	return false, sc.errorf("unterminated string")
}

// plain marks the bytes that need no attention inside a string: not a
// quote, a backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *scanner) number() error {
	b, i := sc.b, sc.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		sc.i = i
		return sc.errorf("unexpected end in number")
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		sc.i = i
		return sc.errorf("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			sc.i = i
			return sc.errorf("invalid number")
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			sc.i = i
			return sc.errorf("invalid number")
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	sc.i = i
	return nil
}

func (sc *scanner) literal(lit string) error {
	if len(sc.b)-sc.i < len(lit) || string(sc.b[sc.i:sc.i+len(lit)]) != lit {
		return sc.errorf("invalid literal")
	}
	sc.i += len(lit)
	return nil
}
