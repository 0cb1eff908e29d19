package credentials

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
)

// ErrInvalidKubeconfig is wrapped by the errors of values that are not a
// usable kubeconfig.
var ErrInvalidKubeconfig = errors.New("invalid kubeconfig")

// checkKubeconfig checks that data is a kubeconfig the agent can use: it
// loads (clientcmd.Load), and the context the agent will use (contextName,
// the account's context field, else current-context) exists, names a
// defined cluster with a server and, if it names a user, a defined user.
// Its errors contain nothing taken from data but line numbers, kubeconfig
// field names and Go type names.
func checkKubeconfig(data []byte, contextName string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidKubeconfig, fmt.Sprintf(format, args...))
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return fail("empty")
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return fail("%s%s", DescribeLoadError(err), hint(data))
	}
	name, fromAccount := contextName, contextName != ""
	if !fromAccount {
		name = cfg.CurrentContext
	}
	switch {
	case len(cfg.Contexts) == 0:
		return fail("defines no contexts%s", hint(data))
	case name == "":
		return fail("has no current-context, and the account sets no context")
	}
	kctx, ok := cfg.Contexts[name]
	switch {
	case !ok && fromAccount:
		return fail("context %s (the account's context field) is not defined", quote(name))
	case !ok:
		return fail("current-context names a context that is not defined")
	case kctx.Cluster == "":
		return fail("the context in use names no cluster")
	}
	cluster, ok := cfg.Clusters[kctx.Cluster]
	switch {
	case !ok:
		return fail("the context in use names a cluster that is not defined")
	case cluster.Server == "":
		return fail("the cluster of the context in use has no server")
	}
	if kctx.AuthInfo != "" {
		if _, ok := cfg.AuthInfos[kctx.AuthInfo]; !ok {
			return fail("the context in use names a user that is not defined")
		}
	}
	return nil
}

// CheckKubeconfig checks data as the control plane checks a kubeconfig it
// sends to an agent: it loads, and the context in use (contextName, else
// current-context) names a defined cluster with a server and, if it names
// a user, a defined user. Errors wrap ErrInvalidKubeconfig and hold
// nothing taken from data but line numbers and kubeconfig field names, so
// they may be logged and reported where clientcmd's may not.
func CheckKubeconfig(data []byte, contextName string) error {
	return checkKubeconfig(data, contextName)
}

// hint adds a suggestion for two common mistakes: base64-encoding the
// kubeconfig, and putting a path where contents belong.
func hint(data []byte) string {
	s := strings.TrimSpace(string(data))
	if dec, err := base64.StdEncoding.DecodeString(s); err == nil && len(dec) > 0 {
		if _, err := clientcmd.Load(dec); err == nil {
			return " (the value is base64-encoded; give the kubeconfig YAML itself)"
		}
	}
	if printable(s) && strings.ContainsAny(s, "/.") {
		return " (the value looks like a file path; use kubeconfigFile for paths)"
	}
	return ""
}

var (
	yamlLineErr = regexp.MustCompile(`(?:^|: )yaml: line (\d+): ([^\n]*)$`)
	yamlErr     = regexp.MustCompile(`(?:^|: )yaml: ([^\n]*)$`)
	jsonTypeErr = regexp.MustCompile(`json: cannot unmarshal ([a-z]+) into Go struct field [A-Za-z0-9_]+\.([A-Za-z0-9_.-]+) of type ([][A-Za-z0-9_.*]+)$`)
	quotedPunct = regexp.MustCompile(`'[^A-Za-z0-9\s']'`)
	plainWords  = regexp.MustCompile(`^[a-z][a-z ]{0,79}$`)
)

// DescribeLoadError rewrites an error of clientcmd.Load (or LoadFromFile,
// which the caller names the file of) without anything taken from the
// document: YAML messages only when they are fixed text (lowercase words,
// quoted punctuation), field paths only when every part is a kubeconfig
// field name, and line numbers. The decoders' own messages quote the
// document (an anchor's or a kind's name, a map key, a token), so they
// must never be shown or logged as they are.
func DescribeLoadError(err error) string {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		if safeYAMLMessage(m[2]) {
			return fmt.Sprintf("YAML syntax error at line %s: %s", m[1], m[2])
		}
		return fmt.Sprintf("YAML syntax error at line %s", m[1])
	}
	if m := yamlErr.FindStringSubmatch(msg); m != nil {
		if safeYAMLMessage(m[1]) {
			return "YAML syntax error: " + m[1]
		}
		return "YAML syntax error"
	}
	if m := jsonTypeErr.FindStringSubmatch(msg); m != nil {
		if knownFieldPath(m[2]) {
			return fmt.Sprintf("%s has the wrong type: %s where %s is expected", m[2], article(m[1]), m[3])
		}
		return fmt.Sprintf("a field has the wrong type: %s where %s is expected", article(m[1]), m[3])
	}
	switch {
	case strings.HasPrefix(msg, "no kind "):
		return "apiVersion and kind must be v1 and Config"
	case strings.Contains(msg, "couldn't get version/kind"):
		return "not a YAML or JSON document describing a kubeconfig"
	}
	return "not a kubeconfig"
}

func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	}
	return "a " + kind
}

func safeYAMLMessage(m string) bool {
	return plainWords.MatchString(quotedPunct.ReplaceAllString(m, "x"))
}

// kubeconfigFields holds every JSON field name of a v1 kubeconfig.
var kubeconfigFields = func() map[string]bool {
	names := map[string]bool{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n != "" && n != "-" {
				names[n] = true
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[clientcmdv1.Config]())
	return names
}()

func knownFieldPath(p string) bool {
	for part := range strings.SplitSeq(p, ".") {
		if !kubeconfigFields[part] {
			return false
		}
	}
	return true
}
