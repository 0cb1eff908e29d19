package credentials

import (
	"fmt"
	"strings"
	"unicode"
)

// maxPrintable is the longest value Redact prints as it is: longer than
// any sensible path or reference, shorter than a kubeconfig.
const maxPrintable = 1024

// maxRun is the longest run of base64 characters (letters, digits, + and
// =, not /) that a printable value may contain: paths and Secret names are
// split by '/', '.', '-' and '_' into much shorter words, while tokens,
// keys and certificate data are long unbroken runs.
const maxRun = 32

// Redact returns s as it may appear in a log line or an error message.
// Secret references (encryptedFile:k8s!...) print as they are, sealed values
// as their header and size, and file paths as they are. Anything else that
// may be kubeconfig contents or a credential (several lines, whitespace,
// JSON, a long value, a long unbroken run of base64 characters, a JWT) prints
// as "<redacted N bytes>". When in doubt it redacts.
func Redact(s string) string {
	if s == "" {
		return ""
	}
	if IsSealed(s) {
		if h, _, err := splitSealed(s); err == nil {
			return fmt.Sprintf("%s<%d bytes>", h, len(s)-len(h))
		}
	}
	if printable(s) {
		return s
	}
	return fmt.Sprintf("<redacted %d bytes>", len(s))
}

// printable reports whether s looks like a path, a name or a secret
// reference rather than content or a credential.
func printable(s string) bool {
	if len(s) > maxPrintable || strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") ||
		strings.HasPrefix(s, "eyJ") || strings.HasPrefix(s, "apiVersion") {
		return false
	}
	run := 0
	for _, c := range s {
		if c == unicode.ReplacementChar || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return false
		}
		if c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c) || c == '+' || c == '=') {
			run++
			if run >= maxRun {
				return false
			}
		} else {
			run = 0
		}
	}
	return true
}

// looksLikeContent reports whether a field that should hold a path or a
// reference holds kubeconfig contents instead.
func looksLikeContent(s string) bool {
	t := strings.TrimSpace(s)
	return strings.ContainsAny(t, "\n\r") || strings.HasPrefix(t, "{") ||
		strings.HasPrefix(t, "apiVersion") || strings.Contains(t, ": ")
}
