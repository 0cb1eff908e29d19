package yamlstrict

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type size int

func (s *size) UnmarshalStrictYAML(n *yaml.Node) error {
	v, ok := strings.CutSuffix(n.Value, "k")
	if !ok {
		return fmt.Errorf("expected a size such as 4k, got %q", n.Value)
	}
	var i int
	if _, err := fmt.Sscan(v, &i); err != nil {
		return fmt.Errorf("expected a size such as 4k, got %q", n.Value)
	}
	*s = size(i * 1024)
	return nil
}

type testServer struct {
	Port    *int     `yaml:"port"`
	Address string   `yaml:"address" alias:"host"`
	Tags    []string `yaml:"tags"`
	Size    *size    `yaml:"size"`
}

type testItem struct {
	Name string `yaml:"name"`
}

type testDoc struct {
	Server testServer          `yaml:"server"`
	Items  []testItem          `yaml:"items"`
	Labels map[string]string   `yaml:"labels"`
	Nested map[string]testItem `yaml:"nested"`
	Opt    *testServer         `yaml:"opt"`
	Skip   string              `yaml:"-"`
	hidden string              // unexported: ignored
	Any    map[string][]string `yaml:"any"`
	Flags  map[string]bool     `yaml:"flags"`
	Ints   map[string]int      `yaml:"ints"`
}

func decode(t *testing.T, d *Decoder, dst *testDoc, docs ...string) error {
	t.Helper()
	var errs []error
	for i, doc := range docs {
		errs = append(errs, d.Decode(dst, fmt.Sprintf("f%d.yaml", i+1), []byte(doc)))
	}
	return errors.Join(errs...)
}

func TestErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"servr: {}\n", `config f1.yaml: unknown key "servr" (line 1); did you mean "server"?`},
		{"server:\n  prot: 1\n", `config f1.yaml: unknown key "server.prot" (line 2); did you mean "port"?`},
		{"Server: {}\n", `config f1.yaml: unknown key "Server" (line 1); did you mean "server"?`},
		{"zzz: 1\n", `config f1.yaml: unknown key "zzz" (line 1)`},
		{"items:\n  - name: a\n  - nmae: b\n", `config f1.yaml: unknown key "items[1].nmae" (line 3); did you mean "name"?`},
		{"items:\n  - nam: b\n", `config f1.yaml: unknown key "items[0].nam" (line 2)`}, // too short for a hint
		{"server.port: 1\n", `config f1.yaml: unknown key "server.port" (line 1)`},      // DottedKeys off
		{"server: {port: x}\n", `config f1.yaml: server.port: expected an integer, got "x" (line 1)`},
		{"server: {port: 1.5}\n", `config f1.yaml: server.port: expected an integer, got "1.5" (line 1)`},
		{"server: {tags: a}\n", `config f1.yaml: server.tags: expected a list, got "a" (line 1)`},
		{"server: [a]\n", `config f1.yaml: server: expected a mapping, got a list (line 1)`},
		{"server: {size: 4m}\n", `config f1.yaml: server.size: expected a size such as 4k, got "4m" (line 1)`},
		{"server: {port: 1}\nserver: {port: 2}\n", `config f1.yaml: server: set twice (also on line 1) (line 2)`},
		{"server: {host: a, address: b}\n", `config f1.yaml: server.address: set twice (also on line 1) (line 1)`},
		{"labels: {a: x, a: y}\n", `config f1.yaml: labels.a: set twice (also on line 1) (line 1)`},
		{"ints: {a: x}\n", `config f1.yaml: ints.a: expected an integer, got "x" (line 1)`},
		{"- a\n", `config f1.yaml: top level must be a mapping of keys (line 1)`},
		{"a: 1\n---\nb: 2\n", `config f1.yaml: more than one YAML document (line 2)`},
		{"? [a]\n: 1\n", `config f1.yaml: keys must be strings (line 1)`},
		{"server: {<<: 1}\n", `config f1.yaml: server.<<: merge key needs a mapping or a list of mappings (line 1)`},
	}
	for _, tt := range tests {
		err := decode(t, &Decoder{}, &testDoc{}, tt.doc)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n err = %v\nwant = %s", tt.doc, err, tt.want)
		}
	}
	err := decode(t, &Decoder{}, &testDoc{}, "a: [\n")
	if err == nil || !strings.HasPrefix(err.Error(), "config f1.yaml: yaml: ") {
		t.Errorf("syntax error: %v", err)
	}
	var ke *KeyError
	err = decode(t, &Decoder{}, &testDoc{}, "a: 1\nserver: {b: 2, port: x}\n")
	if !errors.Is(err, ErrUnknownKey) || !errors.As(err, &ke) || ke.Key != "a" || ke.Line != 1 {
		t.Errorf("err = %v, KeyError %+v", err, ke)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("want 3 errors, got %d:\n%v", n, err)
	}
	if err := (&Decoder{}).Decode(testDoc{}, "x", nil); err == nil {
		t.Error("Decode into a non-pointer: no error")
	}
}

func TestMergeAndOrigins(t *testing.T) {
	d := &Decoder{}
	var doc testDoc
	err := decode(t, d, &doc,
		"server:\n  port: 1\n  address: a\n  tags: [x, y]\nitems: [{name: a}, {name: b}]\nlabels: {a: '1', b: '2'}\nopt: {port: 5, address: o}\n",
		"# override\nserver:\n  tags: [z]\n  size: 2k\nitems: ~\nlabels: {b: '3'}\nopt: {address: p}\n",
		"",
	)
	if err != nil {
		t.Fatal(err)
	}
	one, five := 1, 5
	sz := size(2048)
	want := testDoc{
		Server: testServer{Port: &one, Address: "a", Tags: []string{"z"}, Size: &sz},
		Labels: map[string]string{"a": "1", "b": "3"},
		Opt:    &testServer{Port: &five, Address: "p"},
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("got  %+v\nwant %+v", doc, want)
	}
	for key, want := range map[string]Origin{
		"server.port":      {"f1.yaml", 2},
		"server.tags":      {"f2.yaml", 3},
		"server.tags[0]":   {"f2.yaml", 3},
		"server.tags[1]":   {"f2.yaml", 3}, // the nearest enclosing key
		"items":            {},
		"items[0].name":    {},
		"opt.port":         {"f1.yaml", 7},
		"server.size.deep": {"f2.yaml", 4},
	} {
		got, ok := d.Origin(key)
		if ok != (want != Origin{}) || got != want {
			t.Errorf("Origin(%s) = %v, %v; want %v", key, got, ok, want)
		}
	}
	if d.IsSet("items") || !d.IsSet("server.size") {
		t.Errorf("IsSet wrong")
	}
	if got := d.Sources(); !reflect.DeepEqual(got, []string{"f1.yaml", "f2.yaml", "f3.yaml"}) {
		t.Errorf("Sources = %v", got)
	}
	if e := d.KeyError("server.port", "bad %d", 1); e.Error() != "config f1.yaml: server.port: bad 1 (line 2)" {
		t.Errorf("KeyError = %v", e)
	}
	if e := d.KeyError("other", "bad"); e.Error() != "config f1.yaml, f2.yaml, f3.yaml: other: bad" {
		t.Errorf("KeyError = %v", e)
	}
	var nilDec *Decoder
	if e := nilDec.KeyError("k", "bad"); e.Error() != "k: bad" || nilDec.IsSet("k") || nilDec.Sources() != nil || nilDec.Unsupported() != nil {
		t.Errorf("nil decoder: %v", e)
	}
}

func TestDottedKeys(t *testing.T) {
	d := &Decoder{DottedKeys: true}
	var doc testDoc
	err := decode(t, d, &doc, "server:\n  address: a\nserver.port: 3\nopt.tags: [t]\nlabels.x.y: z\n")
	if err != nil {
		t.Fatal(err)
	}
	if *doc.Server.Port != 3 || doc.Server.Address != "a" || doc.Opt.Tags[0] != "t" || doc.Labels["x.y"] != "z" {
		t.Errorf("doc = %+v", doc)
	}
	if o, _ := d.Origin("server.port"); o.Line != 3 {
		t.Errorf("origin = %v", o)
	}
	for doc, want := range map[string]string{
		"server: {port: 1}\nserver.port: 2\n": `config f1.yaml: server.port: set twice (also on line 1) (line 2)`,
		"server.prot: 1\n":                    `config f1.yaml: unknown key "server.prot" (line 1); did you mean "port"?`,
		"servr.port: 1\n":                     `config f1.yaml: unknown key "servr.port" (line 1); did you mean "server"?`,
		"server.port.x: 1\n":                  `config f1.yaml: server.port: expected an integer, got a mapping (line 1)`,
	} {
		err := decode(t, &Decoder{DottedKeys: true}, &testDoc{}, doc)
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n err = %v\nwant = %s", doc, err, want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	d := &Decoder{DottedKeys: true, IsUnsupported: func(k string) bool {
		return k == "legacy" || k == "items[].old" || k == "server.ssl"
	}}
	var doc testDoc
	err := decode(t, d, &doc, "legacy: {a: [1, 2]}\nitems: [{name: a, old: x}]\nserver.ssl.enabled: true\nserver: {port: 1}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Unsupported(), []string{"items[0].old", "legacy", "server.ssl.enabled"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Unsupported = %v, want %v", got, want)
	}
	if err := decode(t, d, &doc, "legacyx: 1\n"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("legacyx: %v", err)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	var doc testDoc
	err := decode(t, &Decoder{}, &doc, `
base: &b {port: 1, address: a}
`[1:])
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("base: %v", err)
	}
	doc = testDoc{}
	err = decode(t, &Decoder{}, &doc, `
opt: &b {port: 1, address: a, tags: [x]}
server:
  <<: *b
  port: 2
labels:
  <<: [{a: '1'}, {a: '2', b: '2'}]
  b: '3'
`[1:])
	if err != nil {
		t.Fatal(err)
	}
	if *doc.Server.Port != 2 || doc.Server.Address != "a" || doc.Server.Tags[0] != "x" {
		t.Errorf("server = %+v", doc.Server)
	}
	if !reflect.DeepEqual(doc.Labels, map[string]string{"a": "1", "b": "3"}) {
		t.Errorf("labels = %v", doc.Labels)
	}
}

func TestKeys(t *testing.T) {
	got := Keys(reflect.TypeFor[*testDoc]())
	want := []string{"server.port", "server.address", "server.tags", "server.size", "items[].name",
		"labels", "nested", "opt.port", "opt.address", "opt.tags", "opt.size", "any", "flags", "ints"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Keys =\n %v\nwant\n %v", got, want)
	}
}

func TestMergedMappingDuplicates(t *testing.T) {
	// A key set twice within a merged mapping is reported where the mapping
	// is merged too; explicit keys still override merged ones.
	err := decode(t, &Decoder{}, &testDoc{}, "opt: &b {port: 1, port: 2}\nserver:\n  <<: [*b, *b]\n  port: 3\n")
	want := "config f1.yaml: opt.port: set twice (also on line 1) (line 1)\n" +
		"config f1.yaml: server.port: set twice (also on line 1) (line 1)\n" +
		"config f1.yaml: server.port: set twice (also on line 1) (line 1)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestKeepNullOrigins(t *testing.T) {
	for _, keep := range []bool{false, true} {
		d := &Decoder{KeepNullOrigins: keep}
		var doc testDoc
		if err := decode(t, d, &doc, "server:\n  port: 1\n", "server:\n  address: a\n  port: ~\n"); err != nil {
			t.Fatal(err)
		}
		want := Origin{"f2.yaml", 1} // server
		if keep {
			want = Origin{"f2.yaml", 3}
		}
		if o, ok := d.Origin("server.port"); !ok || o != want || d.IsSet("server.port") || doc.Server.Port != nil {
			t.Errorf("keep=%v: Origin = %v, %v; IsSet = %v", keep, o, ok, d.IsSet("server.port"))
		}
		if err := d.Decode(&doc, "f3.yaml", []byte("server: {port: 2}\n")); err != nil {
			t.Fatal(err)
		}
		if o, _ := d.Origin("server.port"); o != (Origin{"f3.yaml", 1}) || !d.IsSet("server.port") {
			t.Errorf("keep=%v: after reset Origin = %v, IsSet = %v", keep, o, d.IsSet("server.port"))
		}
	}
}

func TestKeysAsWritten(t *testing.T) {
	for doc, want := range map[string][2]string{
		"server: {host: [a]}\n":         {"server.address: expected a string, got a list", "server.host: expected a string, got a list"},
		"server: {address: a, host: b}": {"server.address: set twice (also on line 1)", "server.host: set twice (also on line 1)"},
		"server: {address: [a]}\n":      {"server.address: expected a string, got a list", "server.address: expected a string, got a list"},
	} {
		for i, written := range []bool{false, true} {
			d := &Decoder{KeysAsWritten: written}
			err := decode(t, d, &testDoc{}, doc)
			if want := "config f1.yaml: " + want[i] + " (line 1)"; err == nil || err.Error() != want {
				t.Errorf("%q written=%v:\n err = %v\nwant = %s", doc, written, err, want)
			}
		}
	}
	d := &Decoder{KeysAsWritten: true}
	if err := decode(t, d, &testDoc{}, "server: {host: a}\n"); err != nil || !d.IsSet("server.address") {
		t.Errorf("err = %v, IsSet = %v", err, d.IsSet("server.address"))
	}
}

// tally counts names: written as a mapping of counts ({a: 2}) or as a list
// of names, each counting once ([a, a]). It decodes through NodeUnmarshaler.
type tally map[string]int

func (t *tally) UnmarshalStrictYAMLNode(d *FieldDecoder, n *yaml.Node) {
	out := tally{}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if item = Resolve(item); item.Kind != yaml.ScalarNode {
				d.Fail(fmt.Sprintf("%s[%d]", d.Key(), i), item.Line, "expected a name")
				continue
			}
			d.Record(d.Key()+"."+item.Value, item.Line)
			out[item.Value]++
		}
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			name, count := n.Content[i].Value, 0
			d.Record(d.Key()+"."+name, n.Content[i].Line)
			if d.Decode(n.Content[i+1], &count, d.Key()+"."+name) {
				out[name] += count
			}
		}
	default:
		d.TypeError(d.Key(), n, reflect.TypeFor[tally]())
	}
	*t = out
}

type tallyDoc struct {
	Votes tally  `yaml:"votes"`
	Opt   *tally `yaml:"opt"`
	Name  string `yaml:"name"`
}

func TestNodeUnmarshaler(t *testing.T) {
	if got, want := Keys(reflect.TypeFor[tallyDoc]()), []string{"votes", "opt", "name"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %v, want %v", got, want)
	}
	d := &Decoder{}
	var doc tallyDoc
	err := d.Decode(&doc, "f1.yaml", []byte("a: &n x\nvotes:\n  - *n\n  - y\n  - x\nopt: {z: 3}\n"))
	if err == nil || err.Error() != `config f1.yaml: unknown key "a" (line 1)` {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(doc.Votes, tally{"x": 2, "y": 1}) || !reflect.DeepEqual(*doc.Opt, tally{"z": 3}) {
		t.Errorf("doc = %+v", doc)
	}
	for key, want := range map[string]Origin{"votes.y": {"f1.yaml", 4}, "votes.x": {"f1.yaml", 5}, "opt.z": {"f1.yaml", 6}} {
		if o, _ := d.Origin(key); o != want {
			t.Errorf("Origin(%s) = %v, want %v", key, o, want)
		}
	}
	// A later document replaces the value and forgets the origins below it.
	if err := d.Decode(&doc, "f2.yaml", []byte("votes: {w: 1}\nopt: ~\n")); err != nil {
		t.Fatal(err)
	}
	if o, _ := d.Origin("votes.y"); o != (Origin{"f2.yaml", 1}) || doc.Opt != nil || !reflect.DeepEqual(doc.Votes, tally{"w": 1}) {
		t.Errorf("after f2: Origin = %v, doc = %+v", o, doc)
	}
	for doc, want := range map[string]string{
		"votes: x\n":           `config f1.yaml: votes: expected a mapping, got "x" (line 1)`,
		"votes: [[a]]\n":       `config f1.yaml: votes[0]: expected a name (line 1)`,
		"votes: {a: b}\n":      `config f1.yaml: votes.a: expected an integer, got "b" (line 1)`,
		"votes: []\nvotes: []": `config f1.yaml: votes: set twice (also on line 1) (line 2)`,
	} {
		if err := (&Decoder{}).Decode(&tallyDoc{}, "f1.yaml", []byte(doc)); err == nil || err.Error() != want {
			t.Errorf("%q:\n err = %v\nwant = %s", doc, err, want)
		}
	}
}
