package ops

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// maxValueInMessage bounds a rejected value quoted in an API error: the
// API server quotes whole objects ("Invalid value: {...}: field is
// immutable" on a Job's template is kilobytes of Go struct).
const maxValueInMessage = 200

// shortened is an error whose message elides long quoted values; it
// unwraps to the original (apierrors.IsInvalid etc. still work).
type shortened struct {
	msg string
	err error
}

func (e *shortened) Error() string { return e.msg }
func (e *shortened) Unwrap() error { return e.err }

// typedPatchError tells whether err is the API server's refusal of a
// server-side apply whose object does not fit the kind's schema ("failed
// to create typed patch object ...: .data.debug: expected string, got
// ..."): answered as a 500, but the same request always fails the same way.
func typedPatchError(err error) bool {
	return apierrors.IsInternalError(err) && strings.Contains(err.Error(), "failed to create typed patch object")
}

// conversionError tells whether err is the API server's refusal of a
// server-side apply whose object the typed patch took but the kind's Go
// type cannot hold ("failed to convert new object ... to proper version:
// ... quantities must match ...", "illegal base64 data"): a 500 too, and
// as permanent for a built-in kind.
func conversionError(err error) bool {
	return apierrors.IsInternalError(err) && strings.Contains(err.Error(), "failed to convert new object")
}

// goValue is how the API server quotes a value in a typed patch error.
var goValue = regexp.MustCompile(`&value\.valueUnstructured\{Value:([^{}]*)\}`)

// maxTypedPatchMessage bounds a typed patch error's message: a nested value
// is quoted as a Go struct dump, hundreds of kilobytes deep.
const maxTypedPatchMessage = 2000

// shorten rewrites an Invalid API error whose causes quote long values so
// that each cause reads "field: Invalid value (N bytes, elided): reason",
// and a typed patch error's Go-syntax values as plain ones, cut to
// maxTypedPatchMessage. Other errors are returned as they are.
func shorten(err error) error {
	if typedPatchError(err) {
		msg := goValue.ReplaceAllString(err.Error(), "$1")
		if len(msg) > maxTypedPatchMessage {
			cut := maxTypedPatchMessage
			for cut > 0 && !utf8.RuneStart(msg[cut]) {
				cut-- // never half a character: the message must stay UTF-8
			}
			msg = fmt.Sprintf("%s ... (%d bytes elided)", msg[:cut], len(msg)-cut)
		}
		return &shortened{msg: msg, err: err}
	}
	var st apierrors.APIStatus
	if err == nil || !errors.As(err, &st) || len(err.Error()) <= 2*maxValueInMessage {
		return err
	}
	s := st.Status()
	if s.Details == nil || len(s.Details.Causes) == 0 {
		return err
	}
	head, _, found := strings.Cut(s.Message, " is invalid: ")
	if !found {
		return err
	}
	causes := make([]string, 0, len(s.Details.Causes))
	for _, c := range s.Details.Causes {
		msg := c.Message
		if v, ok := strings.CutPrefix(msg, "Invalid value: "); ok {
			if end := valueEnd(v); end > maxValueInMessage && strings.HasPrefix(v[end:], ": ") {
				msg = fmt.Sprintf("Invalid value (%d bytes, elided): %s", end, v[end+2:])
			}
		}
		if c.Field != "" {
			msg = c.Field + ": " + msg
		}
		causes = append(causes, msg)
	}
	// The context wrapped around the API's message, before and after it.
	prefix, suffix, _ := strings.Cut(err.Error(), s.Message)
	return &shortened{msg: prefix + head + " is invalid: " + strings.Join(causes, "; ") + suffix, err: err}
}

// valueEnd is where the value quoted at the start of v ends: a JSON-like
// string, object or array (quotes and brackets matched), else the next
// ": ". -1 when it cannot tell.
func valueEnd(v string) int {
	if v == "" {
		return -1
	}
	switch v[0] {
	case '"', '{', '[':
	default:
		return strings.Index(v, ": ")
	}
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
			if !inString && depth == 0 {
				return i + 1
			}
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
