package yamlstrict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Unmarshaler is implemented by field types that decode themselves, such as
// a data size written either as 4MB or as a number of bytes. The node is
// never null (null resets the field to its zero value) nor an alias. An
// error is reported as a KeyError at the field's key and the node's line.
type Unmarshaler interface {
	UnmarshalStrictYAML(n *yaml.Node) error
}

// NodeUnmarshaler is implemented by field types that decode themselves
// with the decoder's help: a type that reports several errors, each at its
// own key and line, records where its sub-keys were set, or decodes parts of
// its node as ordinary values (a list of one-key mappings read as a map, for
// instance). As for Unmarshaler, the node is never null nor an alias.
// Origins recorded below the field's key by earlier documents are forgotten
// before it is called.
type NodeUnmarshaler interface {
	UnmarshalStrictYAMLNode(d *FieldDecoder, n *yaml.Node)
}

var (
	unmarshalerType     = reflect.TypeFor[Unmarshaler]()
	nodeUnmarshalerType = reflect.TypeFor[NodeUnmarshaler]()
)

// selfDecoding reports whether values of type t decode themselves.
func selfDecoding(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(unmarshalerType) || pt.Implements(nodeUnmarshalerType)
}

// Origin is where a key was set.
type Origin struct {
	File string
	Line int // 1-based
}

// Decoder decodes one or more YAML documents into the same struct and
// remembers where each key was set. The zero value is ready to use; a nil
// *Decoder answers the lookup methods (nothing set).
type Decoder struct {
	// IsUnsupported, if set, reports whether key (a dotted path with list
	// indexes written as [], such as accounts[].oAuthScopes) is documented
	// but not implemented. Such a key is accepted with everything below it,
	// not decoded, and listed by Unsupported. It is asked about unknown keys
	// only, and for a dotted key (with DottedKeys) about each of its prefixes.
	IsUnsupported func(key string) bool
	// DottedKeys reads a key that is not a field name but a dotted path to
	// one (kubesvc.grpc.server.port: 9091) as the nested keys it names, the
	// way Spring Boot does. The nested and the dotted spelling of the same
	// key in one document are reported as set twice.
	DottedKeys bool
	// KeepNullOrigins makes a key set to null keep where it was set, so that
	// Origin and KeyError point at it (useful when validation rejects the
	// zero value it leaves, such as a required name written as name: ~).
	// IsSet reports such a key unset either way.
	KeepNullOrigins bool
	// KeysAsWritten makes the errors found while decoding a key written in
	// its alias spelling (and the keys below it) name it as written rather
	// than by its canonical yaml tag name. Origins, IsSet and KeyError use
	// canonical names either way.
	KeysAsWritten bool

	sources     []string
	origins     map[string]Origin
	nulls       map[string]Origin // keys reset by null, with KeepNullOrigins
	unsupported map[string]Origin
}

// ReadFile reads the file at path and decodes it with Decode.
func (d *Decoder) ReadFile(dst any, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return d.Decode(dst, path, data)
}

// Decode decodes one YAML document into dst, a pointer to a struct,
// overriding the keys it sets. name is used in errors (normally the file
// path). An empty document, or one holding only comments or null, changes
// nothing. All errors of the document are returned together (errors.Join),
// each a *KeyError except syntax errors from the YAML parser, which are
// prefixed with "config NAME: ". On error dst may be partly updated.
func (d *Decoder) Decode(dst any, name string, data []byte) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("yamlstrict: Decode needs a non-nil pointer to a struct, got %T", dst)
	}
	d.sources = append(d.sources, name)
	if strings.TrimSpace(string(data)) == "" {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("config %s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("config %s: %w", name, err)
		}
		return &KeyError{File: name, Line: extra.Line, Msg: "more than one YAML document"}
	}
	root := Resolve(&doc)
	if root == nil || isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return &KeyError{File: name, Line: root.Line, Msg: "top level must be a mapping of keys"}
	}
	w := &walker{d: d, file: name, leaves: map[string]int{}}
	w.decode(root, v.Elem(), "")
	return errors.Join(w.errs...)
}

// Sources returns the names of the documents decoded so far, in order.
func (d *Decoder) Sources() []string {
	if d == nil {
		return nil
	}
	return slices.Clone(d.sources)
}

// IsSet reports whether key (a canonical dotted path such as
// kubesvc.grpc.server.port or accounts[0].name) was set by a document and
// not reset since.
func (d *Decoder) IsSet(key string) bool {
	if d == nil {
		return false
	}
	_, ok := d.origins[key]
	return ok
}

// Origin returns where key, or else the nearest enclosing key, was last set
// (to null too, with KeepNullOrigins).
func (d *Decoder) Origin(key string) (Origin, bool) {
	if d == nil {
		return Origin{}, false
	}
	for key != "" {
		if o, ok := d.origins[key]; ok {
			return o, true
		}
		if o, ok := d.nulls[key]; ok {
			return o, true
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return Origin{}, false
}

// Unsupported returns, sorted, the keys accepted through IsUnsupported.
func (d *Decoder) Unsupported() []string {
	if d == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(d.unsupported))
}

// KeyError returns a validation error about key, located at the file and
// line where key (or the nearest enclosing key) was set, or else attributed
// to all sources.
func (d *Decoder) KeyError(key, format string, args ...any) *KeyError {
	e := &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
	if o, ok := d.Origin(key); ok {
		e.File, e.Line = o.File, o.Line
	} else if d != nil {
		e.File = strings.Join(d.sources, ", ")
	}
	return e
}

func (d *Decoder) record(key string, o Origin) {
	if d.origins == nil {
		d.origins = map[string]Origin{}
	}
	d.origins[key] = o
	delete(d.nulls, key)
}

// reset forgets that key was set, its value being reset by null; with
// KeepNullOrigins, Origin still finds where.
func (d *Decoder) reset(key string) {
	if o, ok := d.origins[key]; ok && d.KeepNullOrigins {
		if d.nulls == nil {
			d.nulls = map[string]Origin{}
		}
		d.nulls[key] = o
	}
	delete(d.origins, key)
}

func (d *Decoder) recordUnsupported(key string, o Origin) {
	if d.unsupported == nil {
		d.unsupported = map[string]Origin{}
	}
	d.unsupported[key] = o
}

// drop forgets what was recorded below key, whose value is being replaced.
func (d *Decoder) drop(key string) {
	for _, m := range []map[string]Origin{d.origins, d.nulls, d.unsupported} {
		for k := range m {
			if strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
				delete(m, k)
			}
		}
	}
}

// FieldDecoder is handed to a NodeUnmarshaler: it decodes, records and
// reports within the document being decoded.
type FieldDecoder struct {
	w   *walker
	key string
}

// Key returns the canonical dotted path of the field being decoded.
func (f *FieldDecoder) Key() string { return f.key }

// Record notes that key (normally below Key) was set at line.
func (f *FieldDecoder) Record(key string, line int) {
	f.w.d.record(key, Origin{f.w.file, line})
}

// Decode stores n into dst, a non-nil pointer, as the value of key, the way
// a field of dst's type is decoded; errors are reported at key. It reports
// whether dst was set without error.
func (f *FieldDecoder) Decode(n *yaml.Node, dst any, key string) bool {
	return f.w.decode(n, reflect.ValueOf(dst).Elem(), key)
}

// Fail reports an error about key at line.
func (f *FieldDecoder) Fail(key string, line int, msg string) {
	f.w.fail(key, line, msg, nil)
}

// TypeError reports that the value n of key is not of type want, in the
// words of the decoder's own type errors (expected a list, got "x").
func (f *FieldDecoder) TypeError(key string, n *yaml.Node, want reflect.Type) {
	f.w.typeError(n, want, key, nil)
}
