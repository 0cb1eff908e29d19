package yamlstrict

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// walker decodes one document. Errors are collected, not returned early, so
// that one load reports every problem.
type walker struct {
	d    *Decoder
	file string
	errs []error
	// leaves maps the leaf keys set in this document to their lines, to
	// report a key set both nested and dotted.
	leaves map[string]int
	// merging is > 0 while keys pulled in by a merge key (<<) are decoded;
	// explicit keys may override those without being "set twice".
	merging int
}

// Resolve skips document and alias nodes: it returns the node n stands for,
// or nil for an empty document.
func Resolve(n *yaml.Node) *yaml.Node {
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

func (w *walker) fail(key string, line int, msg string, err error) {
	w.errs = append(w.errs, &KeyError{File: w.file, Key: key, Line: line, Msg: msg, Err: err})
}

// isLeaf reports whether a value of type t is set as a whole (scalars,
// lists, self-decoding types) rather than key by key (structs, maps).
func isLeaf(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if selfDecoding(t) {
		return true
	}
	return t.Kind() != reflect.Struct && t.Kind() != reflect.Map
}

// decode stores n into v. It reports whether v was set without error.
func (w *walker) decode(n *yaml.Node, v reflect.Value, path string) bool {
	n = Resolve(n)
	if n == nil {
		return true
	}
	if isNull(n) {
		if v.Kind() == reflect.Struct {
			return true // an empty section changes nothing
		}
		w.d.drop(path)
		w.d.reset(path)
		v.SetZero()
		return true
	}
	if v.Kind() == reflect.Pointer {
		nv := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			nv.Elem().Set(v.Elem()) // merge into what earlier documents set
		}
		if !w.decode(n, nv.Elem(), path) {
			return false
		}
		v.Set(nv)
		return true
	}
	if u, ok := v.Addr().Interface().(Unmarshaler); ok {
		if err := u.UnmarshalStrictYAML(n); err != nil {
			w.fail(path, n.Line, err.Error(), err)
			return false
		}
		return true
	}
	if u, ok := v.Addr().Interface().(NodeUnmarshaler); ok {
		w.d.drop(path)
		before := len(w.errs)
		u.UnmarshalStrictYAMLNode(&FieldDecoder{w: w, key: path}, n)
		return len(w.errs) == before
	}
	switch v.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.typeError(n, v.Type(), path, nil)
			return false
		}
		before := len(w.errs)
		if v.Kind() == reflect.Struct {
			w.structFields(n, v, path)
		} else {
			w.mapEntries(n, v, path)
		}
		return len(w.errs) == before
	case reflect.Slice:
		w.d.drop(path)
		if n.Kind != yaml.SequenceNode {
			w.typeError(n, v.Type(), path, nil)
			return false
		}
		ok := true
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.d.record(p, Origin{w.file, item.Line})
			ok = w.decode(item, s.Index(i), p) && ok
		}
		v.Set(s)
		return ok
	default:
		if n.Kind != yaml.ScalarNode {
			w.typeError(n, v.Type(), path, nil)
			return false
		}
		tmp := reflect.New(v.Type())
		if err := n.Decode(tmp.Interface()); err != nil {
			w.typeError(n, v.Type(), path, err)
			return false
		}
		if tmp.Elem().CanInt() && n.ShortTag() == "!!float" {
			// The YAML library truncates 1.5 to 1; only whole numbers (1e9) are integers.
			if f, err := strconv.ParseFloat(n.Value, 64); err != nil || f != float64(tmp.Elem().Int()) {
				w.typeError(n, v.Type(), path, err)
				return false
			}
		}
		v.Set(tmp.Elem())
		return true
	}
}

func (w *walker) typeError(n *yaml.Node, want reflect.Type, path string, err error) {
	var got string
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping"
	case yaml.SequenceNode:
		got = "a list"
	default:
		got = fmt.Sprintf("%q", n.Value)
	}
	w.fail(path, n.Line, fmt.Sprintf("expected %s, got %s", typeName(want), got), err)
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Pointer:
		return typeName(t.Elem())
	default:
		return "a mapping"
	}
}

// pairs calls fn for the key/value pairs of mapping n: first those pulled
// in by merge keys (<<: *anchor or a list of anchors, earlier ones winning),
// then the explicit ones, which override them. seen is fresh for each
// mapping, merged or explicit, for fn to find a key set twice within it.
func (w *walker) pairs(n *yaml.Node, path string, fn func(k, val *yaml.Node, seen map[string]int)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			continue
		}
		var from []*yaml.Node
		switch m := Resolve(val); {
		case m != nil && m.Kind == yaml.MappingNode:
			from = []*yaml.Node{m}
		case m != nil && m.Kind == yaml.SequenceNode:
			for j := len(m.Content) - 1; j >= 0; j-- {
				from = append(from, Resolve(m.Content[j]))
			}
		default:
			from = []*yaml.Node{nil}
		}
		for _, mm := range from {
			if mm == nil || mm.Kind != yaml.MappingNode {
				w.fail(joinKey(path, "<<"), k.Line, "merge key needs a mapping or a list of mappings", nil)
				continue
			}
			w.merging++
			w.pairs(mm, path, fn)
			w.merging--
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
		case k.Kind != yaml.ScalarNode:
			w.fail(path, k.Line, "keys must be strings", nil)
		default:
			fn(k, val, seen)
		}
	}
}

// set decodes val into v, the value of key path written at k.
func (w *walker) set(k, val *yaml.Node, v reflect.Value, path string) {
	if w.merging == 0 && isLeaf(v.Type()) {
		if line, dup := w.leaves[path]; dup {
			w.fail(path, k.Line, fmt.Sprintf("set twice (also on line %d)", line), nil)
			return
		}
		w.leaves[path] = k.Line
	}
	w.d.record(path, Origin{w.file, k.Line})
	w.decode(val, v, path)
}

// structFields decodes the keys of mapping n into the fields of struct v.
func (w *walker) structFields(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	w.pairs(n, path, func(k, val *yaml.Node, seen map[string]int) {
		if idx, name, ok := fieldFor(t, k.Value); ok {
			p := joinKey(path, name)
			before := len(w.errs)
			if w.d.KeysAsWritten && name != k.Value {
				defer w.rename(before, p, joinKey(path, k.Value))
			}
			if line, dup := seen[name]; dup {
				w.fail(p, k.Line, fmt.Sprintf("set twice (also on line %d)", line), nil)
				return
			}
			seen[name] = k.Line
			w.set(k, val, v.Field(idx), p)
			return
		}
		head, rest, dotted := strings.Cut(k.Value, ".")
		dotted = dotted && w.d.DottedKeys && head != "" && rest != ""
		if dotted {
			if idx, name, ok := fieldFor(t, head); ok {
				sub := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: k.Line, Column: k.Column,
					Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: rest, Line: k.Line, Column: k.Column}, val}}
				p := joinKey(path, name)
				if isLeaf(v.Field(idx).Type()) {
					w.set(k, sub, v.Field(idx), p) // reports the type mismatch
				} else {
					w.d.record(p, Origin{w.file, k.Line})
					w.decode(sub, v.Field(idx), p)
				}
				return
			}
		}
		p := joinKey(path, k.Value)
		if w.d.IsUnsupported != nil {
			// A dotted key is unsupported if any of its prefixes is.
			prefixes := []string{k.Value}
			if dotted {
				prefixes = prefixes[:0]
				for i := range len(k.Value) + 1 {
					if i == len(k.Value) || k.Value[i] == '.' {
						prefixes = append(prefixes, k.Value[:i])
					}
				}
			}
			for _, pre := range prefixes {
				if w.d.IsUnsupported(GenericKey(joinKey(path, pre))) {
					w.d.recordUnsupported(p, Origin{w.file, k.Line})
					return
				}
			}
		}
		if !dotted {
			head = k.Value
		}
		hint := ""
		if s := suggest(t, head); s != "" {
			hint = fmt.Sprintf("did you mean %q?", s)
		}
		w.fail(p, k.Line, hint, ErrUnknownKey)
	})
}

// rename makes the errors from index from on name key (or a key below it)
// as written, for KeysAsWritten.
func (w *walker) rename(from int, key, written string) {
	for _, err := range w.errs[from:] {
		if e, ok := err.(*KeyError); ok {
			if rest, ok := strings.CutPrefix(e.Key, key); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
				e.Key = written + rest
			}
		}
	}
}

// mapEntries decodes the keys of mapping n into map v (string keys).
func (w *walker) mapEntries(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		w.fail(path, n.Line, fmt.Sprintf("cannot decode into %s (map keys must be strings)", t), nil)
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	w.pairs(n, path, func(k, val *yaml.Node, seen map[string]int) {
		p := joinKey(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			w.fail(p, k.Line, fmt.Sprintf("set twice (also on line %d)", line), nil)
			return
		}
		seen[k.Value] = k.Line
		key := reflect.ValueOf(k.Value).Convert(t.Key())
		ev := reflect.New(t.Elem()).Elem()
		if old := v.MapIndex(key); old.IsValid() {
			ev.Set(old)
		}
		before := len(w.errs)
		w.set(k, val, ev, p)
		if len(w.errs) == before {
			v.SetMapIndex(key, ev)
		}
	})
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
		if name == "" || name == "-" {
			continue
		}
		if alias := f.Tag.Get("alias"); name == key || (alias != "" && alias == key) {
			return i, name, true
		}
	}
	return 0, "", false
}
