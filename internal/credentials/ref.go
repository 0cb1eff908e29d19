package credentials

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ErrInvalidRef is wrapped by every error ParseRef returns.
var ErrInvalidRef = errors.New("invalid secret reference")

// Form is how a secret reference says its value is used.
type Form int

const (
	// FormFile is encryptedFile: the Secret value is a whole file, such
	// as a kubeconfig.
	FormFile Form = iota + 1
	// FormString is encrypted: the Secret value is a string.
	FormString
)

const (
	prefixFile   = "encryptedFile:"
	prefixString = "encrypted:"
	engineK8s    = "k8s"
)

func (f Form) prefix() string {
	if f == FormString {
		return prefixString
	}
	return prefixFile
}

// String returns "encryptedFile" or "encrypted".
func (f Form) String() string { return strings.TrimSuffix(f.prefix(), ":") }

// Ref is a parsed Spinnaker secret reference to a key of a Kubernetes
// Secret: encryptedFile:k8s!n:NAME!k:KEY!ns:NAMESPACE, or the same with
// encrypted:. A Ref holds names only, never secret content.
type Ref struct {
	Form Form
	// Name is the Secret's name (parameter n).
	Name string
	// Key is the key in the Secret's data (parameter k).
	Key string
	// Namespace is the Secret's namespace (parameter ns); empty means the
	// resolver's default namespace.
	Namespace string
}

// String prints the reference back in its canonical form (parameters in the
// order n, k, ns; ns only when given).
func (r Ref) String() string {
	var b strings.Builder
	b.WriteString(r.Form.prefix())
	b.WriteString(engineK8s)
	b.WriteString("!n:")
	b.WriteString(r.Name)
	b.WriteString("!k:")
	b.WriteString(r.Key)
	if r.Namespace != "" {
		b.WriteString("!ns:")
		b.WriteString(r.Namespace)
	}
	return b.String()
}

// IsRef reports whether s has the prefix of a secret reference
// (encrypted: or encryptedFile:). It does not check the rest; ParseRef does.
func IsRef(s string) bool {
	return strings.HasPrefix(s, prefixFile) || strings.HasPrefix(s, prefixString)
}

// ParseRef parses a secret reference. The parameters n (Secret name) and k
// (key) are required, ns (namespace) is optional, and they may come in any
// order. Errors wrap ErrInvalidRef and name the problem; they quote the
// input only when it cannot be secret content (see Redact).
func ParseRef(s string) (Ref, error) {
	fail := func(format string, args ...any) (Ref, error) {
		return Ref{}, fmt.Errorf("%w %s: %s", ErrInvalidRef, Redact(s), fmt.Sprintf(format, args...))
	}
	var r Ref
	var rest string
	switch {
	case strings.HasPrefix(s, prefixFile):
		r.Form, rest = FormFile, s[len(prefixFile):]
	case strings.HasPrefix(s, prefixString):
		r.Form, rest = FormString, s[len(prefixString):]
	default:
		return fail("expected encryptedFile:k8s!n:NAME!k:KEY!ns:NAMESPACE or encrypted:k8s!...")
	}
	parts := strings.Split(rest, "!")
	switch engine := parts[0]; {
	case engine == "":
		return fail("no secret engine after %q (expected %s%s!n:NAME!k:KEY)", r.Form.prefix(), r.Form.prefix(), engineK8s)
	case engine != engineK8s:
		return fail("unsupported secret engine %s: only %q (Kubernetes Secrets) is supported", quote(engine), engineK8s)
	}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, ":")
		switch {
		case p == "":
			return fail("empty parameter (two '!' in a row, or a trailing '!')")
		case !ok:
			return fail("parameter %s is not NAME:VALUE", quote(p))
		case k != "n" && k != "k" && k != "ns":
			return fail("unknown parameter %s (the k8s engine takes n, k and ns)", quote(k))
		case seen[k]:
			return fail("parameter %s is given twice", k)
		case v == "":
			return fail("parameter %s is empty", k)
		}
		seen[k] = true
		switch k {
		case "n":
			if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
				return fail("n: %s is not a valid Secret name: %s", quote(v), short(errs))
			}
			r.Name = v
		case "k":
			if errs := validation.IsConfigMapKey(v); len(errs) > 0 {
				return fail("k: %s is not a valid Secret key: %s", quote(v), short(errs))
			}
			r.Key = v
		case "ns":
			if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
				return fail("ns: %s is not a valid namespace: %s", quote(v), short(errs))
			}
			r.Namespace = v
		}
	}
	switch {
	case r.Name == "" && r.Key == "":
		return fail("missing n:SECRET_NAME and k:KEY")
	case r.Name == "":
		return fail("missing n:SECRET_NAME")
	case r.Key == "":
		return fail("missing k:KEY")
	}
	return r, nil
}

// quote quotes s for an error message if Redact would print it, else
// returns Redact's placeholder.
func quote(s string) string {
	if printable(s) {
		return strconv.Quote(s)
	}
	return Redact(s)
}

// short returns the first validation message without its example and
// regular expression.
func short(errs []string) string {
	m, _, _ := strings.Cut(errs[0], " (e.g.")
	return m
}
