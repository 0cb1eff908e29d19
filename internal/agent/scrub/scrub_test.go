package scrub

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// checkScrubbedSecret checks a scrubbed Secret: no sentinel anywhere, key
// names kept with empty values, managedFields gone, the rest intact.
func checkScrubbedSecret(t *testing.T, out []byte) {
	t.Helper()
	assertNoLeak(t, out)
	v := decode(t, out)
	wantData := map[string]any{"password": "", "username": ""}
	if got, _ := path(v, "data"); !reflect.DeepEqual(got, wantData) {
		t.Errorf("data = %v, want %v", got, wantData)
	}
	if got, _ := path(v, "stringData"); !reflect.DeepEqual(got, map[string]any{"token": ""}) {
		t.Errorf("stringData = %v", got)
	}
	if _, ok := path(v, "metadata", "managedFields"); ok {
		t.Error("managedFields kept")
	}
	for _, kv := range [][2]string{{"type", "Opaque"}, {"kind", "Secret"}, {"apiVersion", "v1"}} {
		if got, _ := path(v, kv[0]); got != kv[1] {
			t.Errorf("%s = %v, want %s", kv[0], got, kv[1])
		}
	}
	if got, _ := path(v, "metadata", "annotations", "note"); got != "keep me" {
		t.Errorf("other annotation = %v", got)
	}
	la, ok := path(v, "metadata", "annotations", LastAppliedAnnotation)
	if !ok {
		t.Fatal("last-applied annotation dropped although valid")
	}
	las := la.(string)
	if !strings.HasSuffix(las, "\n") {
		t.Error("trailing newline of last-applied lost")
	}
	inner := decode(t, []byte(las))
	if got, _ := path(inner, "data"); !reflect.DeepEqual(got, map[string]any{"password": ""}) {
		t.Errorf("last-applied data = %v", got)
	}
	if got, _ := path(inner, "stringData"); !reflect.DeepEqual(got, map[string]any{"token": ""}) {
		t.Errorf("last-applied stringData = %v", got)
	}
	if got, _ := path(inner, "metadata", "name"); got != "db" {
		t.Errorf("last-applied metadata.name = %v", got)
	}
}

func TestSecretJSON(t *testing.T) {
	in := secretJSON(t)
	if len(leaks(in)) == 0 {
		t.Fatal("fixture has no sentinel")
	}
	orig := bytes.Clone(in)
	out, err := ScrubJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, orig) {
		t.Error("input modified")
	}
	checkScrubbedSecret(t, out)
}

func TestSecretObject(t *testing.T) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(secretJSON(t)); err != nil {
		t.Fatal(err)
	}
	if !ScrubObject(u) {
		t.Error("ScrubObject reported no change")
	}
	out, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	checkScrubbedSecret(t, out)
	if ScrubObject(u) {
		t.Error("second ScrubObject reported a change")
	}
}

func TestSecretList(t *testing.T) {
	// A SecretList as the API server returns it: items carry no kind.
	item := string(secretJSON(t))
	item = strings.Replace(item, `"kind":"Secret","apiVersion":"v1",`, "", 1)
	list := []byte(`{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[` + item + `,` + item + `]}`)

	out, err := ScrubJSON(list)
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, out)

	ul := &unstructured.UnstructuredList{}
	if err := ul.UnmarshalJSON(list); err != nil {
		t.Fatal(err)
	}
	if !ScrubList(ul) {
		t.Error("ScrubList reported no change")
	}
	out, err = ul.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, out)

	// Map path on the raw list map (no kind inference by apimachinery).
	m, _ := decode(t, list).(map[string]any)
	ScrubMap(m)
	out, _ = json.Marshal(m)
	assertNoLeak(t, out)
	got, _ := path(m["items"].([]any)[1], "data")
	if !reflect.DeepEqual(got, map[string]any{"password": "", "username": ""}) {
		t.Errorf("item data = %v", got)
	}
}

func TestV1List(t *testing.T) {
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","managedFields":[{"manager":"x"}]},"data":{"k":"v"}}`
	list := []byte(`{"apiVersion":"v1","kind":"List","items":[` + cm + `,` + string(secretJSON(t)) + `]}`)
	out, err := ScrubJSON(list)
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, out)
	v := decode(t, out)
	items, _ := path(v, "items")
	c := items.([]any)[0]
	if got, _ := path(c, "data"); !reflect.DeepEqual(got, map[string]any{"k": "v"}) {
		t.Errorf("ConfigMap item data = %v", got)
	}
	if _, ok := path(c, "metadata", "managedFields"); ok {
		t.Error("item managedFields kept")
	}
}

func TestLastAppliedHoldingList(t *testing.T) {
	secretList := mustJSON(t, map[string]any{
		"apiVersion": "v1", "kind": "List",
		"items": []any{
			map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "a"},
				"data": map[string]any{"k": sentinelB64}, "stringData": map[string]any{"s": sentinel}},
			map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "b"},
				"data": map[string]any{"k": "visible"}},
		},
	})
	typedList := mustJSON(t, map[string]any{
		"apiVersion": "v1", "kind": "SecretList",
		"items": []any{map[string]any{"metadata": map[string]any{"name": "a"}, "data": map[string]any{"k": sentinelB64}}},
	})
	for _, tc := range []struct{ name, outer, annotation string }{
		{"secret holding List", `"kind":"Secret","apiVersion":"v1"`, secretList},
		{"configmap holding List", `"kind":"ConfigMap","apiVersion":"v1"`, secretList},
		{"configmap holding SecretList", `"kind":"ConfigMap","apiVersion":"v1"`, typedList},
		{"deployment holding escaped kind", `"kind":"Deployment","apiVersion":"apps/v1"`,
			strings.Replace(secretList, `"Secret"`, `"Secr\u0065t"`, 1)},
		{"doubly nested", `"kind":"ConfigMap","apiVersion":"v1"`, mustJSON(t, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"annotations": map[string]any{LastAppliedAnnotation: secretList}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(`{` + tc.outer + `,"metadata":{"name":"x","annotations":{"` + LastAppliedAnnotation + `":` +
				mustJSON(t, tc.annotation) + `}}}`)
			if len(leaks(in)) == 0 {
				t.Fatal("fixture has no sentinel")
			}
			out, err := ScrubJSON(in)
			if err != nil {
				t.Fatal(err)
			}
			assertNoLeak(t, out)
			la, ok := path(decode(t, out), "metadata", "annotations", LastAppliedAnnotation)
			if !ok {
				t.Fatal("valid annotation dropped")
			}
			if strings.Contains(tc.annotation, "visible") && !strings.Contains(la.(string), "visible") {
				t.Error("ConfigMap item in the annotation was scrubbed")
			}

			m, _ := decode(t, in).(map[string]any)
			ScrubMap(m)
			out, _ = json.Marshal(m)
			assertNoLeak(t, out)
		})
	}
}

func TestMalformedLastAppliedDropped(t *testing.T) {
	for name, ann := range map[string]string{
		"truncated":      `{"apiVersion":"v1","kind":"Secret","data":{"password":"` + sentinelB64 + `"`,
		"not json":       "password=" + sentinel,
		"trailing data":  `{"kind":"Secret"} {"data":{"p":"` + sentinelB64 + `"}}`,
		"array":          `[{"data":{"p":"` + sentinelB64 + `"}}]`,
		"string":         mustJSON(t, sentinel),
		"null":           `null`,
		"empty":          ``,
		"single-quoted":  `{'data':{'p':'` + sentinel + `'}}`,
		"trailing comma": `{"data":{"p":"` + sentinel + `",}}`,
		"duplicate keys": `{"kind":"Secret","data":{"p":"` + sentinelB64 + `"},"data":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			in := []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","annotations":{"a":"b","` +
				LastAppliedAnnotation + `":` + mustJSON(t, ann) + `}},"data":{"p":"` + sentinelB64 + `"}}`)
			out, err := ScrubJSON(in)
			if err != nil {
				t.Fatal(err)
			}
			assertNoLeak(t, out)
			v := decode(t, out)
			if _, ok := path(v, "metadata", "annotations", LastAppliedAnnotation); ok {
				t.Error("malformed annotation kept")
			}
			if got, _ := path(v, "metadata", "annotations", "a"); got != "b" {
				t.Error("other annotation lost")
			}
			if got, _ := path(v, "data"); !reflect.DeepEqual(got, map[string]any{"p": ""}) {
				t.Errorf("data = %v", got)
			}
		})
	}
	// A non-string annotation value on a Secret is dropped too.
	m := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{
		"annotations": map[string]any{LastAppliedAnnotation: map[string]any{"data": sentinel}}}}
	if !ScrubMap(m) {
		t.Error("no change reported")
	}
	if _, ok := path(m, "metadata", "annotations", LastAppliedAnnotation); ok {
		t.Error("non-string annotation kept")
	}
}

// configMapParts builds a ConfigMap whose metadata has managedFields at the
// given position; want is the same bytes without it.
func configMapParts(pos string, pretty bool) (in, want []byte) {
	nl, sp := "", ""
	if pretty {
		nl, sp = "\n    ", " "
	}
	mf := `"managedFields":` + sp + `[{"manager":"kubectl","operation":"Update","fieldsV1":{"f:data":{"f:k":{}}}}]`
	name := `"name":` + sp + `"cfg"`
	ann := `"annotations":` + sp + `{"` + LastAppliedAnnotation + `":` + sp +
		`"{\"apiVersion\":\"v1\",\"data\":{\"password\":\"hunter2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cfg\"}}\n"}`
	var members, without []string
	switch pos {
	case "first":
		members, without = []string{mf, name, ann}, []string{name, ann}
	case "middle":
		members, without = []string{name, mf, ann}, []string{name, ann}
	case "last":
		members, without = []string{name, ann, mf}, []string{name, ann}
	case "only":
		members, without = []string{mf}, nil
	case "none":
		members, without = []string{name, ann}, []string{name, ann}
	}
	build := func(ms []string) []byte {
		md := "{" + nl + strings.Join(ms, ","+nl) + nl + "}"
		if len(ms) == 0 {
			md = "{}"
		}
		return []byte(`{"apiVersion":` + sp + `"v1",` + nl + `"kind":"ConfigMap",` + nl + `"metadata":` + sp + md + `,` + nl +
			`"data":{"password":"hunter2","config.yaml":"a: 1\n"},"binaryData":{"b":"AAEC"}}` + nl)
	}
	return build(members), build(without)
}

func TestConfigMapUntouchedExceptManagedFields(t *testing.T) {
	for _, pretty := range []bool{false, true} {
		for _, pos := range []string{"first", "middle", "last", "only", "none"} {
			t.Run(pos+map[bool]string{false: "", true: "/pretty"}[pretty], func(t *testing.T) {
				in, want := configMapParts(pos, pretty)
				if !json.Valid(in) || !json.Valid(want) {
					t.Fatalf("bad fixture:\n%s\n%s", in, want)
				}
				out, err := ScrubJSON(in)
				if err != nil {
					t.Fatal(err)
				}
				if !json.Valid(out) {
					t.Fatalf("invalid output:\n%s", out)
				}
				wantV, gotV := decode(t, want), decode(t, out)
				if !reflect.DeepEqual(gotV, wantV) {
					t.Errorf("got\n%s\nwant\n%s", out, want)
				}
				if pos == "none" && &out[0] != &in[0] {
					t.Error("unchanged object was copied")
				}
				// Byte-exact apart from the removed member and its comma.
				if pos != "only" && !pretty && !bytes.Equal(out, want) {
					t.Errorf("not byte-exact:\n%s\nwant\n%s", out, want)
				}

				m, _ := decode(t, in).(map[string]any)
				if changed := ScrubMap(m); changed != (pos != "none") {
					t.Errorf("ScrubMap changed = %v", changed)
				}
				if !reflect.DeepEqual(any(m), wantV) {
					t.Errorf("ScrubMap got %v, want %v", m, wantV)
				}
			})
		}
	}
}

func TestManagedFieldsRemovedForAllKinds(t *testing.T) {
	for _, tc := range []struct{ apiVersion, kind string }{
		{"v1", "Pod"}, {"apps/v1", "Deployment"}, {"v1", "ConfigMap"}, {"v1", "Secret"},
		{"example.com/v1alpha1", "Widget"}, {"", "Thing"}, {"v1", ""}, {"", ""},
		{"v1", "Namespace"}, {"rbac.authorization.k8s.io/v1", "ClusterRole"},
	} {
		t.Run(tc.apiVersion+"/"+tc.kind, func(t *testing.T) {
			head := ""
			if tc.apiVersion != "" {
				head += `"apiVersion":"` + tc.apiVersion + `",`
			}
			if tc.kind != "" {
				head += `"kind":"` + tc.kind + `",`
			}
			in := []byte(`{` + head + `"metadata":{"name":"n","managedFields":[{"manager":"m","fieldsV1":{"f:spec":{}}}],"uid":"u"},"spec":{"x":1}}`)
			out, err := ScrubJSON(in)
			if err != nil {
				t.Fatal(err)
			}
			v := decode(t, out)
			if _, ok := path(v, "metadata", "managedFields"); ok {
				t.Errorf("managedFields kept: %s", out)
			}
			if got, _ := path(v, "metadata", "uid"); got != "u" {
				t.Errorf("uid = %v", got)
			}
			if got, _ := path(v, "spec", "x"); got != json.Number("1") {
				t.Errorf("spec.x = %v", got)
			}
			u := &unstructured.Unstructured{Object: decode(t, in).(map[string]any)}
			if !ScrubObject(u) {
				t.Error("ScrubObject reported no change")
			}
			if _, ok := path(u.Object, "metadata", "managedFields"); ok {
				t.Error("ScrubObject kept managedFields")
			}
		})
	}
}

func TestSecretVariants(t *testing.T) {
	d := `"data":{"p":"` + sentinelB64 + `"}`
	for name, in := range map[string]string{
		"no apiVersion":       `{"kind":"Secret",` + d + `}`,
		"escaped kind":        `{"apiVersion":"v1","kind":"Secr\u0065t",` + d + `}`,
		"escaped data key":    `{"apiVersion":"v1","kind":"Secret","d\u0061ta":{"p":"` + sentinelB64 + `"}}`,
		"capitalised Data":    `{"apiVersion":"v1","kind":"Secret","Data":{"p":"` + sentinelB64 + `"},"StringData":{"q":"` + sentinel + `"}}`,
		"data first":          `{` + d + `,"kind":"Secret","apiVersion":"v1"}`,
		"data not an object":  `{"apiVersion":"v1","kind":"Secret","data":"` + sentinelB64 + `","stringData":["` + sentinel + `"]}`,
		"data values not str": `{"apiVersion":"v1","kind":"Secret","data":{"a":{"x":"` + sentinel + `"},"b":["` + sentinel + `"]}}`,
		"whitespace":          "{ \"apiVersion\" : \"v1\" ,\n \"kind\" :\t\"Secret\" , " + d + " }\n",
		"core group":          `{"apiVersion":"core/v1","kind":"Secret",` + d + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			out, err := ScrubJSON([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			assertNoLeak(t, out)
			if !json.Valid(out) {
				t.Errorf("invalid output %s", out)
			}
		})
	}
	// Duplicate keys that could make decoders disagree are refused.
	for name, in := range map[string]string{
		"duplicate kind last":  `{"apiVersion":"v1","kind":"ConfigMap",` + d + `,"kind":"Secret"}`,
		"duplicate kind first": `{"apiVersion":"v1","kind":"Secret",` + d + `,"kind":"ConfigMap"}`,
		"duplicate data":       `{"apiVersion":"v1","kind":"Secret",` + d + `,"data":{}}`,
		"duplicate in item":    `{"apiVersion":"v1","kind":"List","items":[{"kind":"Secret",` + d + `,"kind":"ConfigMap"}]}`,
		"duplicate metadata":   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{},"metadata":{}}`,
		"duplicate mf":         `{"kind":"ConfigMap","metadata":{"managedFields":[],"managedFields":[]}}`,
	} {
		if out, err := ScrubJSON([]byte(in)); !errors.Is(err, ErrDuplicateKey) || out != nil {
			t.Errorf("%s: ScrubJSON = %s, %v; want ErrDuplicateKey", name, out, err)
		}
	}
	// Not a Secret: a kind named Secret in another group.
	in := []byte(`{"apiVersion":"example.com/v1","kind":"Secret","data":{"p":"visible"}}`)
	out, err := ScrubJSON(in)
	if err != nil || !bytes.Equal(out, in) {
		t.Errorf("example.com Secret changed: %s %v", out, err)
	}
}

func TestExtraKinds(t *testing.T) {
	s := New(schema.GroupKind{Group: "example.com", Kind: "Credential"})
	in := []byte(`{"apiVersion":"example.com/v1","kind":"Credential","metadata":{"name":"c"},"data":{"p":"` + sentinel + `"}}`)
	out, err := s.JSON(in)
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, out)
	if got, _ := path(decode(t, out), "data"); !reflect.DeepEqual(got, map[string]any{"p": ""}) {
		t.Errorf("data = %v", got)
	}
	// Core Secrets stay sensitive.
	out, err = s.JSON(secretJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	checkScrubbedSecret(t, out)
	// The default scrubber leaves Credential alone.
	if out, _ := ScrubJSON(in); !bytes.Equal(out, in) {
		t.Error("default scrubber changed a Credential")
	}
	// A ConfigMap whose annotation embeds a Credential.
	cm := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"annotations":{"` + LastAppliedAnnotation + `":` +
		mustJSON(t, string(in)) + `}}}`)
	out, err = s.JSON(cm)
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, out)

	for _, tc := range []struct {
		apiVersion, kind string
		want             bool
	}{
		{"v1", "Secret", true}, {"", "Secret", true}, {"example.com/v1", "Credential", true},
		{"", "Credential", true}, {"other.com/v1", "Credential", false}, {"v1", "Credential", false},
		{"v1", "", false}, {"apps/v1", "Secret", false},
	} {
		if got := s.IsSensitive(tc.apiVersion, tc.kind); got != tc.want {
			t.Errorf("IsSensitive(%q, %q) = %v", tc.apiVersion, tc.kind, got)
		}
	}
	var zero Scrubber
	if !zero.IsSensitive("v1", "Secret") || zero.IsSensitive("example.com/v1", "Credential") {
		t.Error("zero Scrubber")
	}
	if out, err := zero.JSON(secretJSON(t)); err != nil {
		t.Fatal(err)
	} else {
		checkScrubbedSecret(t, out)
	}
}

func TestNonSensitiveAnnotationKeptVerbatim(t *testing.T) {
	dep, err := os.ReadFile("testdata/deployment.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := ScrubJSON(dep)
	if err != nil {
		t.Fatal(err)
	}
	want := decode(t, dep).(map[string]any)
	delete(want["metadata"].(map[string]any), "managedFields")
	if !reflect.DeepEqual(decode(t, out), any(want)) {
		t.Errorf("deployment changed beyond managedFields:\n%s", out)
	}
	if len(out) >= len(dep) {
		t.Error("managedFields not removed")
	}
	again, err := ScrubJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	if &again[0] != &out[0] {
		t.Error("scrubbed deployment copied again")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ScrubJSON(out) }); n != 0 {
		t.Errorf("no-op scrub allocates %v times", n)
	}
}

func TestInvalidInput(t *testing.T) {
	for _, in := range []string{``, ` `, `{`, `{"a":}`, `{"a":1}x`, `{"a":1}{}`, `{"a" 1}`, `{"metadata":{"managedFields":[}}`, `nul`} {
		if out, err := ScrubJSON([]byte(in)); err == nil || errors.Is(err, ErrNotObject) || out != nil {
			t.Errorf("ScrubJSON(%q) = %q, %v; want a syntax error", in, out, err)
		}
	}
	for _, in := range []string{`[]`, `"x"`, `null`, `1`, ` [ {"kind":"Secret"} ] `} {
		if _, err := ScrubJSON([]byte(in)); !errors.Is(err, ErrNotObject) {
			t.Errorf("ScrubJSON(%q) error = %v; want ErrNotObject", in, err)
		}
	}
	if ScrubMap(nil) || ScrubObject(nil) || ScrubList(nil) {
		t.Error("nil reported a change")
	}
}

func TestNumbersPreserved(t *testing.T) {
	in := []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"generation":9007199254740993},"data":{"a":"` + sentinelB64 + `"},"x":1.50e3}`)
	out, err := ScrubJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("9007199254740993")) || !bytes.Contains(out, []byte("1.50e3")) {
		t.Errorf("numbers changed: %s", out)
	}
}

func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, in := range scannerSeeds {
		if got, want := validate([]byte(in)) == nil, json.Valid([]byte(in)); got != want {
			t.Errorf("validate(%q) ok = %v, json.Valid = %v", in, got, want)
		}
	}
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if validate([]byte(deep)) != nil {
		t.Error("depth maxDepth rejected")
	}
	if validate([]byte("["+deep+"]")) == nil || json.Valid([]byte("["+deep+"]")) {
		t.Error("depth maxDepth+1 accepted")
	}
}

var scannerSeeds = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `01`, `1.`, `.5`, `1e`, `1e+`, `1E-7`, `-`, `--1`, `1.5e10`, `123abc`,
	`true`, `tru`, `truex`, `null`, `nul`, `false`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"\/"`, "\"\x01\"", "\"\xff\"",
	`"abc`, `{"a"}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a":1 "b":2}`, `{1:2}`, ` {"a" : [ 1 , {"b":null} ] } `,
	`{"a":1}}`, `[[[]]`, `{0":[]}`, `{"a":1,"b"}`, "{\"a\":\"\t\"}", `"\ud800"`, `{"a":"b"}  x`, "\ufeff{}",
}
