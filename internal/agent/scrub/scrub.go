package scrub

import (
	"bytes"
	"encoding/json"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// LastAppliedAnnotation is the annotation in which kubectl apply keeps the
// whole object as it was last applied.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// ScrubbedValue replaces every value of data and stringData in a sensitive
// object.
const ScrubbedValue = ""

// secretGK is the core Secret, always sensitive.
var secretGK = schema.GroupKind{Group: "", Kind: "Secret"}

// Scrubber scrubs objects. Build it with New; the zero value is usable and
// treats only core/v1 Secrets as sensitive. It is safe for concurrent use.
type Scrubber struct {
	extra map[schema.GroupKind]struct{} // sensitive besides secretGK
	names map[string]struct{}           // kinds of extra, for a missing apiVersion
	// marks holds, for every sensitive kind name K, the text `"K` (a quote
	// then the name) and the raw-JSON form `\"K`. An annotation that embeds a
	// sensitive object contains the first (or a \u escape); its JSON string
	// literal contains the second (or a \u escape).
	marks, rawMarks []string
}

var std = New()

// New returns a Scrubber that treats core/v1 Secrets and the given GroupKinds
// as sensitive. A GroupKind's Group is the API group ("" for the core group),
// as in the apiVersion "group/version".
func New(extra ...schema.GroupKind) *Scrubber {
	s := &Scrubber{}
	kinds := []string{secretGK.Kind}
	for _, gk := range extra {
		if gk == secretGK || gk.Kind == "" {
			continue
		}
		if s.extra == nil {
			s.extra = make(map[schema.GroupKind]struct{})
			s.names = make(map[string]struct{})
		}
		if _, ok := s.names[gk.Kind]; !ok && gk.Kind != secretGK.Kind {
			kinds = append(kinds, gk.Kind)
		}
		s.extra[gk] = struct{}{}
		s.names[gk.Kind] = struct{}{}
	}
	for _, k := range kinds {
		s.marks = append(s.marks, `"`+k)
		s.rawMarks = append(s.rawMarks, `\"`+k)
	}
	return s
}

// ScrubMap scrubs the decoded JSON object obj in place with the default
// Scrubber (core/v1 Secrets sensitive). See Scrubber.Map.
func ScrubMap(obj map[string]any) bool { return std.Map(obj) }

// ScrubObject scrubs u in place with the default Scrubber. See
// Scrubber.Object.
func ScrubObject(u *unstructured.Unstructured) bool { return std.Object(u) }

// ScrubList scrubs l and its items in place with the default Scrubber. See
// Scrubber.List.
func ScrubList(l *unstructured.UnstructuredList) bool { return std.List(l) }

// ScrubJSON scrubs the JSON encoding of one object with the default
// Scrubber. See Scrubber.JSON.
func ScrubJSON(b []byte) ([]byte, error) { return std.JSON(b) }

// IsSensitive reports whether the default Scrubber treats objects of this
// apiVersion and kind as sensitive. See Scrubber.IsSensitive.
func IsSensitive(apiVersion, kind string) bool { return std.IsSensitive(apiVersion, kind) }

// IsSensitive reports whether an object with this apiVersion and kind has its
// data and stringData scrubbed. An empty apiVersion matches a sensitive kind
// by name in any group; an empty kind never matches.
func (s *Scrubber) IsSensitive(apiVersion, kind string) bool {
	if kind == "" {
		return false
	}
	if apiVersion == "" {
		if kind == secretGK.Kind {
			return true
		}
		_, ok := s.names[kind]
		return ok
	}
	group := ""
	if i := strings.IndexByte(apiVersion, '/'); i >= 0 {
		group = apiVersion[:i]
		if group == "core" { // not a real group; a typo for "v1" is still a Secret
			group = ""
		}
	}
	gk := schema.GroupKind{Group: group, Kind: kind}
	if gk == secretGK {
		return true
	}
	_, ok := s.extra[gk]
	return ok
}

// Object scrubs u in place and reports whether anything changed. A nil u is
// left alone.
func (s *Scrubber) Object(u *unstructured.Unstructured) bool {
	if u == nil {
		return false
	}
	return s.Map(u.Object)
}

// List scrubs the list object of l and every item in place and reports
// whether anything changed. An item without apiVersion and kind is taken to
// be of the list's kind without the "List" suffix.
func (s *Scrubber) List(l *unstructured.UnstructuredList) bool {
	if l == nil {
		return false
	}
	changed := s.Map(l.Object)
	apiVersion, _ := l.Object["apiVersion"].(string)
	kind, _ := l.Object["kind"].(string)
	itemKind := strings.TrimSuffix(kind, "List")
	for i := range l.Items {
		if s.scrubMap(l.Items[i].Object, apiVersion, itemKind, false) {
			changed = true
		}
	}
	return changed
}

// Map scrubs obj, the decoded JSON of one object (as in
// unstructured.Unstructured.Object), in place and reports whether anything
// changed. Values are those of encoding/json or apimachinery's unstructured
// decoding: map[string]any, []any, string, numbers, bool, nil.
func (s *Scrubber) Map(obj map[string]any) bool {
	return s.scrubMap(obj, "", "", false)
}

// scrubMap scrubs one object. defAPIVersion and defKind stand in for a
// missing kind (list items); force makes the object sensitive whatever it
// says it is (the last-applied annotation of a sensitive object).
func (s *Scrubber) scrubMap(obj map[string]any, defAPIVersion, defKind string, force bool) bool {
	if obj == nil {
		return false
	}
	changed := false
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if kind == "" {
		apiVersion, kind = defAPIVersion, defKind
	}
	sensitive := force || s.IsSensitive(apiVersion, kind)

	md, _ := obj["metadata"].(map[string]any)
	if md != nil {
		if _, ok := md["managedFields"]; ok {
			delete(md, "managedFields")
			changed = true
		}
	}

	if sensitive {
		for k, v := range obj {
			if !isDataKey(k) {
				continue
			}
			switch v := v.(type) {
			case nil:
			case map[string]any:
				for dk, dv := range v {
					if str, ok := dv.(string); !ok || str != ScrubbedValue {
						v[dk] = ScrubbedValue
						changed = true
					}
				}
			default: // not a map: no key names worth keeping
				delete(obj, k)
				changed = true
			}
		}
	}

	if md != nil {
		if ann, ok := md["annotations"].(map[string]any); ok {
			if v, ok := ann[LastAppliedAnnotation]; ok {
				str, isString := v.(string)
				switch {
				case !isString:
					if sensitive {
						delete(ann, LastAppliedAnnotation)
						changed = true
					}
				case sensitive || s.suspicious(str):
					if scrubbed, ok := s.scrubAnnotation(str, apiVersion, kind, sensitive); !ok {
						delete(ann, LastAppliedAnnotation)
						changed = true
					} else if scrubbed != str {
						ann[LastAppliedAnnotation] = scrubbed
						changed = true
					}
				}
			}
		}
	}

	if strings.HasSuffix(kind, "List") {
		if items, ok := obj["items"].([]any); ok {
			itemKind := strings.TrimSuffix(kind, "List")
			for _, it := range items {
				if m, ok := it.(map[string]any); ok && s.scrubMap(m, apiVersion, itemKind, false) {
					changed = true
				}
			}
		}
	}
	return changed
}

// isDataKey reports whether k names a field whose values a sensitive object
// keeps secret. Case-insensitive: encoding/json matches struct fields so, and
// a scrubbed "Data" costs nothing.
func isDataKey(k string) bool {
	return strings.EqualFold(k, "data") || strings.EqualFold(k, "stringData")
}

// suspicious reports whether a last-applied annotation of a non-sensitive
// object could embed a sensitive object. An embedded object's kind is the
// JSON string "K" for a sensitive K, at some depth of JSON-in-a-string
// nesting. At every depth that string is a quote (escaped as \" or \u0022
// one level up, and \" contains ") then the name (each letter literal or a
// \u escape), so the text contains `"K` or `\u`.
func (s *Scrubber) suspicious(text string) bool {
	if strings.Contains(text, `\u`) {
		return true
	}
	for _, m := range s.marksOrDefault() {
		if strings.Contains(text, m) {
			return true
		}
	}
	return false
}

// rawSuspicious is suspicious for the JSON string literal of the
// annotation, before unescaping: `"K` inside it is `\"K` or uses \u.
func (s *Scrubber) rawSuspicious(lit []byte) bool {
	if bytes.Contains(lit, []byte(`\u`)) {
		return true
	}
	for _, m := range s.rawMarksOrDefault() {
		if bytes.Contains(lit, []byte(m)) {
			return true
		}
	}
	return false
}

var (
	defaultMarks    = []string{`"Secret`}
	defaultRawMarks = []string{`\"Secret`}
)

func (s *Scrubber) marksOrDefault() []string {
	if s.marks == nil {
		return defaultMarks
	}
	return s.marks
}

func (s *Scrubber) rawMarksOrDefault() []string {
	if s.rawMarks == nil {
		return defaultRawMarks
	}
	return s.rawMarks
}

// scrubAnnotation parses a last-applied annotation, scrubs it and re-encodes
// it. ok is false when the text is not a single JSON object without
// duplicate keys: the caller drops the annotation. Once parsed it is always
// re-encoded, even when nothing changed.
func (s *Scrubber) scrubAnnotation(text, apiVersion, kind string, force bool) (string, bool) {
	m, err := decodeObject([]byte(text))
	if err != nil {
		return "", false
	}
	s.scrubMap(m, apiVersion, kind, force)
	out, err := encode(m)
	if err != nil {
		return "", false
	}
	if strings.HasSuffix(text, "\n") { // kubectl writes a trailing newline
		out = append(out, '\n')
	}
	return string(out), true
}

// encode encodes v compactly, without HTML escaping and without the
// encoder's trailing newline.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
