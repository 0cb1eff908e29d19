package credentials

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
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

// LooksLikeContent reports whether a field that should hold a path or a
// reference (kubeconfigFile, kubeconfigAgent) holds kubeconfig contents
// instead: several lines, JSON, YAML ("key: value") or an apiVersion. It
// is deliberately eager, as no path or reference looks like that; for
// fields that may hold free text, use LooksLikeKubeconfig.
func LooksLikeContent(s string) bool {
	t := strings.TrimSpace(s)
	return strings.ContainsAny(t, "\n\r") || strings.HasPrefix(t, "{") ||
		strings.HasPrefix(t, "apiVersion") || strings.Contains(t, ": ")
}

var (
	// kubeconfigKind matches a kubeconfig's kind, in YAML or JSON.
	kubeconfigKind = regexp.MustCompile(`(?m)(?:^|[\s{,])"?kind"?\s*:\s*"?Config\b`)
	// kubeconfigOnlyKey matches keys found in kubeconfigs and hardly
	// anywhere else.
	kubeconfigOnlyKey = regexp.MustCompile(`(?m)(?:^|[\s{,])"?(?:current-context|certificate-authority-data|client-certificate-data|client-key-data)"?\s*:`)
	// kubeconfigSection matches the keys of a kubeconfig's lists.
	kubeconfigSection = regexp.MustCompile(`(?m)(?:^|[\s{,])"?(clusters|contexts|users)"?\s*:`)
)

// LooksLikeKubeconfig reports whether s, a value whose meaning is not
// known (a field of an account definition this program does not use),
// holds a kubeconfig or part of one: YAML or JSON with kind Config, a key
// only kubeconfigs have (current-context, certificate-authority-data,
// client-certificate-data, client-key-data), two of the sections
// clusters, contexts and users; or the base64 of such a value. It is stricter than LooksLikeContent, so that free text (a
// description with "a: b" in it) is not mistaken for a kubeconfig.
func LooksLikeKubeconfig(s string) bool {
	t := strings.TrimSpace(s)
	if t == "" {
		return false
	}
	if kubeconfigText(t) {
		return true
	}
	dec, err := base64.StdEncoding.DecodeString(t)
	return err == nil && utf8.Valid(dec) && kubeconfigText(string(dec))
}

func kubeconfigText(t string) bool {
	if kubeconfigKind.MatchString(t) || kubeconfigOnlyKey.MatchString(t) {
		return true
	}
	seen := map[string]bool{}
	for _, m := range kubeconfigSection.FindAllStringSubmatch(t, -1) {
		seen[m[1]] = true
	}
	return len(seen) >= 2
}

// FindKubeconfig returns the place, as a path of keys and indexes
// ("a.b[2]"; "" for v itself), of the first value in v that holds
// kubeconfig contents; v is a decoded JSON value (maps, slices, strings,
// numbers, ...). A string under a key naming a kubeconfig ("kubeconfig"
// in any case, e.g. a miscapitalised kubeConfigContents) is judged by
// LooksLikeContent, any other by LooksLikeKubeconfig; an object is also
// judged as a whole, so a kubeconfig given as a JSON object is found. It
// is for definitions stored as they are, which must never keep a
// kubeconfig in plain text.
func FindKubeconfig(v any) (path string, found bool) {
	return findKubeconfig(v, "", false)
}

func findKubeconfig(v any, path string, eager bool) (string, bool) {
	switch x := v.(type) {
	case string:
		return path, LooksLikeKubeconfig(x) || (eager && LooksLikeContent(x))
	case []any:
		for i, e := range x {
			if p, ok := findKubeconfig(e, fmt.Sprintf("%s[%d]", path, i), eager); ok {
				return p, true
			}
		}
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if p, ok := findKubeconfig(x[k], p, eager || strings.Contains(strings.ToLower(k), "kubeconfig")); ok {
				return p, true
			}
		}
		if raw, err := json.Marshal(x); err == nil && kubeconfigText(string(raw)) {
			return path, true
		}
	}
	return "", false
}
