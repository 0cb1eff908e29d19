package yamlstrict

import (
	"reflect"
	"strings"
)

// suggest returns the key of struct type t closest to key, if close enough
// to be a likely typo: the same letters in another case, or at most two
// edits away for keys longer than three characters.
func suggest(t reflect.Type, key string) string {
	best, bestDist := "", 3
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		for _, name := range []string{f.Tag.Get("yaml"), f.Tag.Get("alias")} {
			if name == "" || name == "-" {
				continue
			}
			if strings.EqualFold(name, key) {
				return name
			}
			if dist := levenshtein(strings.ToLower(name), strings.ToLower(key)); dist < bestDist && len(key) > 3 {
				best, bestDist = name, dist
			}
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// GenericKey replaces list indexes by [] (accounts[3].name -> accounts[].name).
func GenericKey(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
			b.WriteString("[]")
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Keys returns the dotted paths of every leaf key of struct type t (a
// pointer to a struct is dereferenced), in field order: nested structs are
// walked, and a list of structs contributes its item keys as path[].key.
// Types implementing Unmarshaler or NodeUnmarshaler are leaves. It is meant for documentation
// checks (every key listed in a reference).
func Keys(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("yaml")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			p := joinKey(prefix, name)
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case selfDecoding(ft):
				out = append(out, p)
			case ft.Kind() == reflect.Struct:
				walk(ft, p)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !selfDecoding(ft.Elem()):
				walk(ft.Elem(), p+"[]")
			default:
				out = append(out, p)
			}
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	walk(t, "")
	return out
}
