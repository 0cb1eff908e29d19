package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrUnknownKey is wrapped by the KeyError reporting a key the agent does not know.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is a configuration error about one key: unknown, of the wrong
// type, or failing validation. Its message is
//
//	config FILE: unknown key "KEY" (line N)
//	config FILE: KEY: MESSAGE (line N)
//
// with the file and line left out when unknown.
type KeyError struct {
	File string // file the key was read from; may be a comma-separated list or empty
	Key  string // full dotted path, e.g. kubernetes.accounts[1].kinds
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

// origin is where a key was set.
type origin struct {
	file string
	line int
}

// nodeDecoder is implemented by field types that decode themselves.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// decoder walks a yaml.Node tree against the File struct, so that every
// key is checked and every error can name its full path.
type decoder struct {
	file string
	dst  *File
	errs []error
}

func decodeDocument(dst *File, name string, data []byte) error {
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
	d := &decoder{file: name, dst: dst}
	root := resolve(&doc)
	if root != nil && !isNull(root) && root.Kind != yaml.MappingNode {
		return &KeyError{File: name, Line: root.Line, Msg: "top level must be a mapping of keys"}
	}
	d.decode(root, reflect.ValueOf(dst).Elem(), "")
	return errors.Join(d.errs...)
}

// resolve skips document and alias nodes.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		case yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) fail(path string, line int, msg string, err error) {
	d.errs = append(d.errs, &KeyError{File: d.file, Key: path, Line: line, Msg: msg, Err: err})
}

func (d *decoder) record(path string, line int) {
	if d.dst.origins == nil {
		d.dst.origins = map[string]origin{}
	}
	d.dst.origins[path] = origin{file: d.file, line: line}
}

// dropOrigins forgets what was recorded below path, whose value is being replaced.
func (d *decoder) dropOrigins(path string) {
	for _, m := range []map[string]origin{d.dst.origins, d.dst.unsupported} {
		for k := range m {
			if strings.HasPrefix(k, path+".") || strings.HasPrefix(k, path+"[") {
				delete(m, k)
			}
		}
	}
}

// decode stores n into v. It reports whether v was set without error.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) bool {
	n = resolve(n)
	if n == nil {
		return true
	}
	if u, ok := v.Addr().Interface().(nodeDecoder); ok {
		before := len(d.errs)
		u.decodeNode(d, n, path)
		return len(d.errs) == before
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return true
		}
		nv := reflect.New(v.Type().Elem())
		if !d.decode(n, nv.Elem(), path) {
			return false
		}
		v.Set(nv)
		return true
	case reflect.Struct:
		if isNull(n) {
			return true
		}
		if n.Kind != yaml.MappingNode {
			d.typeError(n, v.Type(), path, nil)
			return false
		}
		before := len(d.errs)
		d.mapping(n, v, path)
		return len(d.errs) == before
	case reflect.Slice:
		d.dropOrigins(path)
		if isNull(n) {
			v.SetZero()
			return true
		}
		if n.Kind != yaml.SequenceNode {
			d.typeError(n, v.Type(), path, nil)
			return false
		}
		ok := true
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.record(p, item.Line)
			ok = d.decode(item, s.Index(i), p) && ok
		}
		v.Set(s)
		return ok
	default:
		if isNull(n) {
			v.SetZero()
			return true
		}
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, v.Type(), path, nil)
			return false
		}
		tmp := reflect.New(v.Type())
		if err := n.Decode(tmp.Interface()); err != nil {
			d.typeError(n, v.Type(), path, err)
			return false
		}
		if tmp.Elem().CanInt() && n.ShortTag() == "!!float" {
			// The YAML library truncates 1.5 to 1; only whole numbers (1e9) are integers.
			if f, err := strconv.ParseFloat(n.Value, 64); err != nil || f != float64(tmp.Elem().Int()) {
				d.typeError(n, v.Type(), path, err)
				return false
			}
		}
		v.Set(tmp.Elem())
		return true
	}
}

func (d *decoder) typeError(n *yaml.Node, want reflect.Type, path string, err error) {
	var got string
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping"
	case yaml.SequenceNode:
		got = "a list"
	default:
		got = fmt.Sprintf("%q", n.Value)
	}
	d.fail(path, n.Line, fmt.Sprintf("expected %s, got %s", typeName(want), got), err)
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Pointer:
		return typeName(t.Elem())
	default:
		return "a mapping"
	}
}

// mapping decodes the keys of a YAML mapping into the fields of struct v.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	// Merge keys (<<: *anchor) first, so that explicit keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			continue
		}
		m := resolve(val)
		switch {
		case m != nil && m.Kind == yaml.MappingNode:
			d.mapping(m, v, path)
		case m != nil && m.Kind == yaml.SequenceNode:
			// Earlier mappings in the list win, so apply them last.
			for j := len(m.Content) - 1; j >= 0; j-- {
				if mm := resolve(m.Content[j]); mm != nil && mm.Kind == yaml.MappingNode {
					d.mapping(mm, v, path)
				} else {
					d.fail(joinKey(path, "<<"), k.Line, "merge key needs a mapping or a list of mappings", nil)
				}
			}
		default:
			d.fail(joinKey(path, "<<"), k.Line, "merge key needs a mapping or a list of mappings", nil)
		}
	}
	seen := map[int]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k.Line, "keys must be strings", nil)
			continue
		}
		p := joinKey(path, k.Value)
		idx, canonical, ok := fieldFor(v.Type(), k.Value)
		if !ok {
			if unsupportedKey(genericKey(p)) {
				if d.dst.unsupported == nil {
					d.dst.unsupported = map[string]origin{}
				}
				d.dst.unsupported[p] = origin{file: d.file, line: k.Line}
				continue
			}
			hint := ""
			if s := suggest(v.Type(), k.Value); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			d.fail(p, k.Line, hint, ErrUnknownKey)
			continue
		}
		if line, dup := seen[idx]; dup {
			d.fail(p, k.Line, fmt.Sprintf("set twice (also on line %d)", line), nil)
			continue
		}
		seen[idx] = k.Line
		d.record(joinKey(path, canonical), k.Line)
		d.decode(val, v.Field(idx), p)
	}
}

// fieldFor finds the exported field of struct type t named key in its yaml
// or alias tag, returning its index and canonical (yaml tag) name.
func fieldFor(t reflect.Type, key string) (int, string, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("yaml")
		if name == key || (f.Tag.Get("alias") != "" && f.Tag.Get("alias") == key) {
			return i, name, true
		}
	}
	return 0, "", false
}
