package scrub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// buildSecret builds a Secret JSON with the sentinel in every data and
// stringData value, shaped by the bits of layout, around fuzzed key names
// and filler text.
func buildSecret(t testing.TB, key, filler string, layout uint32) []byte {
	bit := func(n uint) bool { return layout&(1<<n) != 0 }
	q := func(s string) string { return mustJSON(t, s) }

	value := filler + sentinel + filler
	dataVal := q(base64.StdEncoding.EncodeToString([]byte(value)))
	if bit(0) {
		dataVal = q(value) // not base64 at all
	}
	dataKey, sdKey := `"data"`, `"stringData"`
	if bit(1) {
		dataKey = `"d\u0061ta"`
	}
	if bit(2) {
		dataKey, sdKey = `"Data"`, `"STRINGDATA"`
	}
	kind := `"Secret"`
	if bit(3) {
		kind = `"Secr\u0065t"`
	}
	data := dataKey + `:{` + q(key) + `:` + dataVal + `,"k2":` + dataVal + `}`
	stringData := sdKey + `:{` + q(key) + `:` + q(value) + `}`
	if bit(4) {
		data = dataKey + `:` + dataVal // not an object
	}

	inner := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":` + q(filler) + `},` + data + `,` + stringData + `}`
	if bit(5) {
		inner = `{"apiVersion":"v1","kind":"List","items":[` + inner + `]}`
	}
	if bit(6) {
		inner = inner[:len(inner)/2] // malformed
	}
	annotations := `"note":` + q(filler)
	if bit(7) {
		annotations += `,"` + LastAppliedAnnotation + `":` + q(inner+"\n")
	}
	metadata := `"metadata":{"name":` + q(filler) + `,"annotations":{` + annotations + `}`
	if bit(8) {
		metadata += `,"managedFields":[{"manager":` + q(filler) + `,"fieldsV1":{"f:data":{` + q("f:"+key) + `:{}}}}]`
	}
	metadata += `}`

	var members []string
	if !bit(9) {
		members = append(members, `"apiVersion":"v1"`)
	}
	if bit(10) {
		members = append(members, `"kind":"ConfigMap"`) // duplicate kind, first
	}
	members = append(members, `"kind":`+kind, metadata, `"type":"Opaque"`, `"filler":`+q(filler))
	if bit(11) {
		members = append(members, `"kind":"ConfigMap"`) // duplicate kind, last
	}
	if bit(12) {
		members = append([]string{data, stringData}, members...)
	} else {
		members = append(members, data, stringData)
	}
	sep := ","
	if bit(13) {
		sep = " ,\n\t"
	}
	doc := "{" + strings.Join(members, sep) + "}"
	if bit(14) {
		// Inside a v1 List, or a SecretList whose items have no kind.
		if bit(15) {
			doc = `{"apiVersion":"v1","kind":"List","items":[` + doc + `]}`
		} else if !bit(9) && !bit(10) && !bit(11) && !bit(3) {
			doc = strings.Replace(doc, `"apiVersion":"v1",`, ``, 1)
			doc = strings.Replace(doc, `"kind":"Secret",`, ``, 1)
			doc = `{"kind":"SecretList","apiVersion":"v1","items":[` + doc + `]}`
		}
	}
	return []byte(doc)
}

// FuzzScrubJSON: for any Secret JSON carrying the sentinel in its data and
// stringData values (and in its last-applied annotation), in any layout, the
// output never contains the sentinel, and is valid JSON.
func FuzzScrubJSON(f *testing.F) {
	for i := range 16 {
		f.Add("password", "", uint32(1)<<i)
	}
	f.Add("tls.crt", "x", uint32(0xffff))
	f.Add(`we"ird\key`, "\u00e9\\\"\n", uint32(0x1a5))
	f.Add("k", "Secret", uint32(0x4081))
	f.Fuzz(func(t *testing.T, key, filler string, layout uint32) {
		if hasSecret(key) || hasSecret(filler) || strings.Contains(key+filler, "SENTINEL") {
			t.Skip("fuzzed text carries the sentinel itself")
		}
		in := buildSecret(t, key, filler, layout)
		if !json.Valid(in) {
			t.Fatalf("bad fixture %s", in)
		}
		if len(leaks(in)) == 0 {
			t.Fatalf("fixture has no sentinel: %s", in)
		}
		out, err := ScrubJSON(in)
		if layout&(1<<10|1<<11) != 0 { // duplicate kind
			if !errors.Is(err, ErrDuplicateKey) || out != nil {
				t.Fatalf("ScrubJSON(%s) = %s, %v; want ErrDuplicateKey", in, out, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ScrubJSON(%s): %v", in, err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %s", out)
		}
		if where := leaks(out); len(where) > 0 {
			t.Fatalf("sentinel leaked at %v\nin:  %s\nout: %s", where, in, out)
		}
		m, _ := decode(t, in).(map[string]any)
		ScrubMap(m)
		mb, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if where := leaks(mb); len(where) > 0 {
			t.Fatalf("ScrubMap leaked at %v\nin:  %s\nout: %s", where, in, mb)
		}
	})
}

// FuzzScrubJSONRaw feeds arbitrary bytes. ScrubJSON must accept exactly the
// valid JSON objects (bar ErrDuplicateKey), produce valid JSON, agree with ScrubMap on the decoded
// object, and never let the sentinel through for a Secret that carries it
// only in places that are scrubbed.
func FuzzScrubJSONRaw(f *testing.F) {
	f.Add(secretJSON(f))
	dep, err := os.ReadFile("testdata/deployment.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dep)
	for _, pos := range []string{"first", "middle", "last", "only"} {
		in, _ := configMapParts(pos, pos == "middle")
		f.Add(in)
	}
	for i := range 16 {
		f.Add(buildSecret(f, "k", "f", uint32(1)<<i))
	}
	for _, s := range scannerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := ScrubJSON(in)
		if errors.Is(err, ErrDuplicateKey) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var ref any
		refErr := dec.Decode(&ref)
		valid := json.Valid(in)
		_, isObject := ref.(map[string]any)
		if (err == nil) != (valid && refErr == nil && isObject) {
			t.Fatalf("ScrubJSON(%q) err = %v, json.Valid = %v, object = %v", in, err, valid, isObject)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q for %q", out, in)
		}
		m := ref.(map[string]any)
		isSecret, residueLeaks := secretResidue(t, in)
		ScrubMap(m)
		got := decode(t, out)
		if !reflect.DeepEqual(got, any(m)) {
			t.Fatalf("ScrubJSON and ScrubMap disagree on %q:\njson: %q\nmap:  %v", in, out, m)
		}
		if md, ok := got.(map[string]any)["metadata"].(map[string]any); ok {
			if _, ok := md["managedFields"]; ok {
				t.Fatalf("managedFields kept: %q", out)
			}
		}
		if isSecret && !residueLeaks {
			if where := leaks(out); len(where) > 0 {
				t.Fatalf("sentinel leaked at %v\nin:  %q\nout: %q", where, in, out)
			}
		}
	})
}

// secretResidue reports whether in decodes to a core/v1 Secret and, if so,
// whether the sentinel appears anywhere but in the places a Secret is
// scrubbed: data, stringData, managedFields, and data and stringData inside
// the last-applied annotation (or the whole annotation if it is invalid).
func secretResidue(t *testing.T, in []byte) (isSecret, residueLeaks bool) {
	m, ok := decode(t, in).(map[string]any)
	if !ok || m["kind"] != "Secret" || (m["apiVersion"] != "v1" && m["apiVersion"] != nil) {
		return false, false
	}
	for k := range m {
		if isDataKey(k) {
			delete(m, k)
		}
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
		if ann, ok := md["annotations"].(map[string]any); ok {
			// The annotation keeps everything but its own data and
			// stringData values; unparsable, it is dropped.
			text, _ := ann[LastAppliedAnnotation].(string)
			delete(ann, LastAppliedAnnotation)
			var inner map[string]any
			if json.Unmarshal([]byte(text), &inner) == nil {
				for k := range inner {
					if isDataKey(k) {
						delete(inner, k)
					}
				}
				ann[LastAppliedAnnotation] = inner
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return true, len(leaks(b)) > 0
}

// FuzzScanner: the validating scanner accepts exactly what encoding/json
// does.
func FuzzScanner(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add([]byte(s))
	}
	f.Add(secretJSON(f))
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := validate(in) == nil, json.Valid(in); got != want {
			t.Fatalf("validate(%q) ok = %v, json.Valid = %v", in, got, want)
		}
	})
}
