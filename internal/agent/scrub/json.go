package scrub

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotObject is returned by JSON for valid JSON that is not an object.
	ErrNotObject = errors.New("scrub: JSON value is not an object")
	// ErrDuplicateKey is returned by JSON for an object that has to be
	// decoded (see JSON) and has a member name twice in one JSON object:
	// decoders disagree on which value counts, so a Secret could pass for
	// something else.
	ErrDuplicateKey = errors.New("scrub: duplicate key in a JSON object")
)

// JSON scrubs the JSON encoding of one object and returns the result, by the
// same rules as Map. b is never modified. When nothing has to change the
// result is b itself (no copy, no allocation); when only managedFields has to
// go, it is a copy of b without that member, everything else byte for byte
// as it was. Sensitive objects, lists and unusual inputs (a repeated
// apiVersion, kind, metadata, managedFields, annotations or last-applied
// annotation; a last-applied annotation that could embed a sensitive object
// or is not a string) are decoded, scrubbed with Map and re-encoded
// compactly, with sorted keys. Member names with escapes are unescaped
// before they are compared.
//
// b must hold exactly one JSON object, optionally surrounded by whitespace;
// anything else, including invalid JSON, is an error (ErrNotObject or a
// syntax error) and no output is produced. An object that is decoded must
// not repeat a member name within any JSON object (ErrDuplicateKey), so the
// repeated names listed above always end in that error. Kubernetes never
// produces such JSON.
func (s *Scrubber) JSON(b []byte) ([]byte, error) {
	sc := scanner{b: b}
	sc.ws()
	if sc.i >= len(b) || b[sc.i] != '{' {
		if err := validate(b); err != nil {
			return nil, err
		}
		return nil, ErrNotObject
	}
	var st scanState
	if err := s.scanTop(&sc, &st); err != nil {
		return nil, err
	}
	sc.ws()
	if sc.i != len(b) {
		return nil, sc.errorf("data after the object")
	}

	apiVersion, kind := st.apiVersion, st.kind
	if st.slow || s.IsSensitive(apiVersion, kind) || (st.hasItems && strings.HasSuffix(kind, "List")) {
		return s.slowJSON(b)
	}
	if !st.mfFound {
		return b, nil
	}
	out := make([]byte, 0, len(b)-(st.mfEnd-st.mfStart))
	out = append(out, b[:st.mfStart]...)
	return append(out, b[st.mfEnd:]...), nil
}

// slowJSON decodes, scrubs and re-encodes.
func (s *Scrubber) slowJSON(b []byte) ([]byte, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	s.scrubMap(m, "", "", false)
	out, err := encode(m)
	if err != nil {
		return nil, fmt.Errorf("scrub: %w", err)
	}
	return out, nil
}

// scanState is what one pass over an object's JSON learns.
type scanState struct {
	// apiVersion and kind may share memory with the scanned bytes (see
	// stringValue): valid only during the JSON call.
	apiVersion, kind string
	seenAPIVersion   bool
	seenKind         bool
	seenMetadata     bool
	hasItems         bool
	// slow: take the decode/scrub/encode path (duplicates, suspicious or
	// non-string annotation).
	slow bool

	seenAnnotations bool
	seenLastApplied bool
	// mfFound: metadata.managedFields is b[mfStart:mfEnd], including one
	// adjacent comma.
	mfFound        bool
	mfStart, mfEnd int
}

// scanTop validates the top-level object at sc.i and fills st.
func (s *Scrubber) scanTop(sc *scanner, st *scanState) error {
	if err := sc.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, '}')
		if err != nil || !more {
			return err
		}
		name, err := sc.key()
		if err != nil {
			return err
		}
		switch name {
		case "apiVersion", "kind":
			str, isString, err := sc.stringValue()
			if err != nil {
				return err
			}
			if !isString {
				str = "" // as Map sees it: not a string
			}
			if name == "apiVersion" {
				st.slow = st.slow || st.seenAPIVersion
				st.seenAPIVersion = true
				st.apiVersion = str
			} else {
				st.slow = st.slow || st.seenKind
				st.seenKind = true
				st.kind = str
			}
			continue
		case "items":
			st.hasItems = true
		case "metadata":
			st.slow = st.slow || st.seenMetadata
			st.seenMetadata = true
			if sc.i < len(sc.b) && sc.b[sc.i] == '{' {
				if err := s.scanMetadata(sc, st); err != nil {
					return err
				}
				continue
			}
		}
		if err := sc.value(); err != nil {
			return err
		}
	}
}

// scanMetadata validates the metadata object at sc.i, finds managedFields
// and checks the last-applied annotation.
func (s *Scrubber) scanMetadata(sc *scanner, st *scanState) error {
	if err := sc.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, '}')
		if err != nil || !more {
			return err
		}
		keyStart := sc.i
		name, err := sc.key()
		if err != nil {
			return err
		}
		switch name {
		case "managedFields":
			if st.mfFound {
				st.slow = true
			}
			comma := sc.comma
			if err := sc.value(); err != nil {
				return err
			}
			st.mfFound = true
			if !first { // drop the comma before: `, "managedFields": [...]`
				st.mfStart, st.mfEnd = comma, sc.i
			} else { // first member: drop the comma after, if any
				st.mfStart, st.mfEnd = keyStart, sc.i
				if j := skipWS(sc.b, sc.i); j < len(sc.b) && sc.b[j] == ',' {
					st.mfEnd = j + 1
				}
			}
			continue
		case "annotations":
			st.slow = st.slow || st.seenAnnotations
			st.seenAnnotations = true
			if sc.i < len(sc.b) && sc.b[sc.i] == '{' {
				if err := s.scanAnnotations(sc, st); err != nil {
					return err
				}
				continue
			}
		}
		if err := sc.value(); err != nil {
			return err
		}
	}
}

// scanAnnotations validates the annotations object at sc.i and sends the
// object down the slow path if its last-applied annotation could embed a
// sensitive object (see suspicious) or is not a string.
func (s *Scrubber) scanAnnotations(sc *scanner, st *scanState) error {
	if err := sc.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, '}')
		if err != nil || !more {
			return err
		}
		name, err := sc.key()
		if err != nil {
			return err
		}
		if name != LastAppliedAnnotation {
			if err := sc.value(); err != nil {
				return err
			}
			continue
		}
		st.slow = st.slow || st.seenLastApplied
		st.seenLastApplied = true
		start := sc.i
		if err := sc.value(); err != nil {
			return err
		}
		if sc.b[start] != '"' || s.rawSuspicious(sc.b[start:sc.i]) {
			st.slow = true
		}
	}
}
