package ops

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// checkNamespace validates a namespace name (empty is allowed).
func checkNamespace(field, ns string) error {
	if ns == "" {
		return nil
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return invalid(field, "invalid namespace %q: %s", ns, strings.Join(msgs, "; "))
	}
	return nil
}

// parseManifests decodes the manifests of a description, expands
// kind: List items, and checks each one's structure. Null entries are
// left out, as Clouddriver does (a pipeline's SpEL may leave one).
func parseManifests(field string, raws []json.RawMessage) ([]*manifest, error) {
	var out []*manifest
	for i, raw := range raws {
		if isNull(raw) {
			continue
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		m, err := decodeObject(f, raw)
		if err != nil {
			return nil, err
		}
		items, err := expandList(f, m)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	return out, nil
}

// manifest is one object of a description, with the path it came from.
type manifest struct {
	field   string
	obj     *unstructured.Unstructured
	mapping *meta.RESTMapping // set by the cluster check
}

// resolve finds the manifest's kind in the cluster's discovery, once; it
// reports whether this call did.
func (it *manifest) resolve(e *Executor) (bool, error) {
	if it.mapping != nil {
		return false, nil
	}
	m, err := e.mappingFor(it.obj.GroupVersionKind(), joinField(it.field, "kind"))
	if err != nil {
		return false, err
	}
	it.mapping = m
	return true, nil
}

func expandList(field string, m map[string]any) ([]*manifest, error) {
	kind, _ := m["kind"].(string)
	if !strings.HasSuffix(kind, "List") || m["items"] == nil {
		if err := checkManifest(field, m); err != nil {
			return nil, err
		}
		return []*manifest{{field: field, obj: &unstructured.Unstructured{Object: m}}}, nil
	}
	items, ok := m["items"].([]any)
	if !ok {
		return nil, invalid(field+".items", "must be a list of objects")
	}
	var out []*manifest
	for i, it := range items {
		f := fmt.Sprintf("%s.items[%d]", field, i)
		im, ok := it.(map[string]any)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		sub, err := expandList(f, im)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// checkManifest validates what the executor relies on: apiVersion, kind,
// metadata with a valid name (or generateName), namespace, labels and
// annotations. The API server validates the rest.
func checkManifest(field string, m map[string]any) error {
	apiVersion, err := requiredString(field, m, "apiVersion")
	if err != nil {
		return err
	}
	if _, err := schema.ParseGroupVersion(apiVersion); err != nil {
		return invalid(joinField(field, "apiVersion"), "malformed apiVersion %q: %v", apiVersion, err)
	}
	if _, err := requiredString(field, m, "kind"); err != nil {
		return err
	}
	mdField := joinField(field, "metadata")
	md, ok := m["metadata"].(map[string]any)
	if !ok {
		if m["metadata"] == nil {
			return invalid(mdField, "required")
		}
		return invalid(mdField, "must be an object")
	}
	name, err := optionalString(mdField, md, "name")
	if err != nil {
		return err
	}
	gen, err := optionalString(mdField, md, "generateName")
	if err != nil {
		return err
	}
	switch {
	case name != "":
		if msgs := path.IsValidPathSegmentName(name); len(msgs) > 0 {
			return invalid(joinField(mdField, "name"), "invalid name %q: %s", name, strings.Join(msgs, "; "))
		}
		if !asciiName(name) {
			return invalid(joinField(mdField, "name"), "invalid name %q: only ASCII characters, no control characters (the cache keeps no other names)", name)
		}
	case gen == "":
		return invalid(joinField(mdField, "name"), "required")
	}
	ns, err := optionalString(mdField, md, "namespace")
	if err != nil {
		return err
	}
	if err := checkNamespace(joinField(mdField, "namespace"), ns); err != nil {
		return err
	}
	for _, k := range []string{"labels", "annotations"} {
		if err := checkStringMap(joinField(mdField, k), md[k]); err != nil {
			return err
		}
	}
	// Values of a ConfigMap or Secret are strings: an unquoted `true` or
	// `8080` in YAML is the usual mistake, which the API server answers
	// with an error that reads like a crash.
	if apiVersion == "v1" {
		var keys []string
		switch m["kind"] {
		case "ConfigMap":
			keys = []string{"data", "binaryData"}
		case "Secret":
			keys = []string{"data", "stringData"}
		}
		for _, k := range keys {
			// A value left empty in YAML ("KEY:") is JSON null, which the
			// API server stores as "".
			if err := checkValues(joinField(field, k), m[k]); err != nil {
				var ve *ValidationError
				if errors.As(err, &ve) && ve.Message == "must be a string" {
					ve.Message = "must be a string (quote it in YAML: values of a " + m["kind"].(string) + " are strings)"
				}
				return err
			}
		}
		// Secret data and ConfigMap binaryData are base64: the API server
		// answers other text with a 500 ("failed to convert new object ...
		// illegal base64 data") on server-side apply, which is retried and,
		// for a Secret, withheld, leaving nothing to act on.
		var b64, hint string
		switch m["kind"] {
		case "ConfigMap":
			b64 = "binaryData"
		case "Secret":
			b64, hint = "data", "; put plain text in stringData"
		}
		if err := checkBase64(joinField(field, b64), m[b64], hint); err != nil {
			return err
		}
	}
	return nil
}

// checkBase64 checks that each value of v (an object of strings or nulls,
// checked before) is standard base64, as the API server decodes it (line
// breaks ignored). The message never quotes the value: it may be a
// Secret's.
func checkBase64(field string, v any, hint string) error {
	m, _ := v.(map[string]any)
	for k, x := range m {
		s, _ := x.(string)
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return invalid(joinField(field, k), "not base64 (%v)%s", err, hint)
		}
	}
	return nil
}

func requiredString(parent string, m map[string]any, key string) (string, error) {
	s, err := optionalString(parent, m, key)
	if err == nil && s == "" {
		err = invalid(joinField(parent, key), "required")
	}
	return s, err
}

func optionalString(parent string, m map[string]any, key string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", invalid(joinField(parent, key), "must be a string")
	}
	return s, nil
}

func checkStringMap(field string, v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return invalid(field, "must be an object of strings")
	}
	for k, x := range m {
		if _, ok := x.(string); !ok {
			return invalid(joinField(field, k), "must be a string")
		}
	}
	return nil
}

// stringMapAt returns the map at path in obj, creating missing levels when
// create is set. It returns nil when a level is not an object.
func stringMapAt(obj map[string]any, create bool, fields ...string) map[string]any {
	cur := obj
	for _, f := range fields {
		next, ok := cur[f].(map[string]any)
		if !ok {
			if cur[f] != nil || !create {
				return nil
			}
			next = map[string]any{}
			cur[f] = next
		}
		cur = next
	}
	return cur
}

// podTemplate returns spec.template when it is an object that looks like a
// pod template (has metadata or spec), else nil.
func podTemplate(obj map[string]any) map[string]any {
	t := stringMapAt(obj, false, "spec", "template")
	if t == nil || (t["metadata"] == nil && t["spec"] == nil) {
		return nil
	}
	return t
}

// storeIfAbsent sets m[k] = v unless k is already set or v is empty.
func storeIfAbsent(m map[string]any, k, v string) {
	if v == "" {
		return
	}
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// stripServerFields removes what a manifest copied from a live object may
// carry and an apply must not send.
func stripServerFields(obj *unstructured.Unstructured) {
	md := stringMapAt(obj.Object, false, "metadata")
	if md == nil {
		return
	}
	for _, k := range []string{"managedFields", "resourceVersion", "uid", "selfLink", "generation", "creationTimestamp"} {
		delete(md, k)
	}
}

// asciiName tells whether s holds only ASCII characters and no control
// characters (a space is one some kinds' names take: RBAC's).
func asciiName(s string) bool {
	for i := range len(s) {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkValues checks a ConfigMap's or Secret's values: strings, or null.
func checkValues(field string, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return checkStringMap(field, v)
	}
	for k, x := range m {
		if _, ok := x.(string); !ok && x != nil {
			return invalid(joinField(field, k), "must be a string")
		}
	}
	return nil
}

// isNull tells whether raw is JSON null, or nothing.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}
