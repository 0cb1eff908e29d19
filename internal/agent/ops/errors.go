package ops

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownOperation is wrapped by the ValidationError returned for an
// operation type the executor does not implement.
var ErrUnknownOperation = errors.New("unknown operation type")

// ValidationError reports a problem with the description of an operation:
// malformed JSON, a missing or ill-typed field, a malformed manifest, a kind
// the cluster does not serve. Nothing was changed in the cluster when it is
// returned, and retrying the same description cannot succeed, so callers
// answer it with 400 Bad Request.
type ValidationError struct {
	// Op is the operation type, e.g. "deployManifest".
	Op string
	// Field is the path of the offending field in the description, e.g.
	// "manifests[1].metadata.name"; empty when the problem concerns the
	// description as a whole.
	Field string
	// Message says what is wrong, e.g. `required` or `unknown kind "Foo"`.
	Message string
	// Err is the underlying cause, if any (see Unwrap).
	Err error
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *ValidationError) Unwrap() error { return e.Err }

// invalid builds a ValidationError for a field; the operation type is filled
// in by Execute and Validate.
func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// withOp names the operation in err: a ValidationError gets its Op set, any
// other error is wrapped with the operation type as prefix.
func withOp(op string, err error) error {
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		if ve.Op == "" {
			ve.Op = op
		}
		if ve == err {
			return ve
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// joinField joins a parent path and a child key: ("manifests[0]", "kind")
// gives "manifests[0].kind"; an empty parent gives the key alone.
func joinField(parent, child string) string {
	if parent == "" {
		return child
	}
	if child == "" {
		return parent
	}
	return parent + "." + child
}

// permanent marks an error the retry loop must not retry, whatever its text
// says (a patch that cannot be computed, a malformed server answer).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }
