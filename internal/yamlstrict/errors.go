package yamlstrict

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownKey is wrapped by the KeyError reporting a key the destination
// struct does not have.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is a configuration error about one key: unknown, of the wrong
// type, or failing validation. Its message is
//
//	config FILE: unknown key "KEY" (line N); HINT
//	config FILE: KEY: MESSAGE (line N)
//
// with the file, line and hint left out when unknown.
type KeyError struct {
	File string // file the key was read from; may be a comma-separated list or empty
	Key  string // full dotted path, e.g. kubesvc.grpc.server.port or accounts[1].kinds
	Line int    // 1-based line in File, 0 if unknown
	Msg  string // what is wrong (for unknown keys: an optional hint)
	Err  error  // underlying error, ErrUnknownKey for unknown keys
}

func (e *KeyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "config %s: ", e.File)
	}
	unknown := errors.Is(e.Err, ErrUnknownKey)
	switch {
	case unknown:
		fmt.Fprintf(&b, "unknown key %q", e.Key)
	case e.Key != "":
		fmt.Fprintf(&b, "%s: %s", e.Key, e.Msg)
	default:
		b.WriteString(e.Msg)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if unknown && e.Msg != "" {
		fmt.Fprintf(&b, "; %s", e.Msg)
	}
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }
