package ops

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// Operations on a Secret never carry its values out: the API server's
// errors (a 422 quotes the whole patched object) keep their reason and
// fields but lose their message, and JSON patches that would read a value
// (copy or move it into an annotation, test it) are refused before
// anything is sent.
func testSecretValuesStayIn(t *testing.T, c *testenv.Cluster) {
	e := newClusterEnv(t, c, Options{})
	const sentinel = "SENTINEL-SECRET-VALUE-4711"
	encoded := base64.StdEncoding.EncodeToString([]byte(sentinel))
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data:       map[string][]byte{"apikey": []byte(sentinel), "other": []byte("x")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	leaks := func(err error) bool {
		return err != nil && (strings.Contains(err.Error(), sentinel) || strings.Contains(err.Error(), encoded))
	}
	patch := func(strategy string, body any) error {
		_, err := e.try(OpPatchManifest, map[string]any{"manifestName": "secret creds", "location": e.ns,
			"options": map[string]any{"mergeStrategy": strategy}, "patchBody": body})
		return err
	}

	// Invalid values: the API server answers 422 quoting the patched
	// object, live apikey included.
	for _, tc := range []struct {
		strategy string
		body     any
	}{
		{"merge", map[string]any{"data": map[string]any{"other": "!!not-base64"}}},
		{"json", []any{map[string]any{"op": "replace", "path": "/data/other", "value": "!!not-base64"}}},
	} {
		err := patch(tc.strategy, tc.body)
		if err == nil {
			t.Fatalf("%s patch with an invalid value succeeded", tc.strategy)
		}
		if leaks(err) {
			t.Errorf("%s patch error quotes the Secret's value: %v", tc.strategy, err)
		}
		if !strings.Contains(err.Error(), "Invalid") || !strings.Contains(err.Error(), "withheld") {
			t.Errorf("%s patch error %q: want the reason kept and the message withheld", tc.strategy, err)
		}
	}

	// Reading values through a JSON patch is refused, naming the field.
	for _, op := range []map[string]any{
		{"op": "copy", "from": "/data/apikey", "path": "/metadata/annotations/x"},
		{"op": "move", "from": "/data", "path": "/metadata/labels"},
		{"op": "test", "path": "/data/apikey", "value": encoded},
		{"op": "copy", "from": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration", "path": "/metadata/annotations/x"},
		{"op": "copy", "from": "/metadata/annotations", "path": "/metadata/labels"},
		{"op": "copy", "from": "", "path": "/metadata/annotations/x"},
	} {
		err := patch("json", []any{op})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field == "" || !strings.HasPrefix(ve.Field, "patchBody[0].") {
			t.Errorf("json patch %v: %v, want a ValidationError naming patchBody[0]", op, err)
		}
	}
	s, err := e.kube.CoreV1().Secrets(e.ns).Get(e.ctx, "creds", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Annotations) != 0 || len(s.Labels) != 0 || string(s.Data["apikey"]) != sentinel {
		t.Errorf("the refused patches changed the Secret: annotations %v labels %v", s.Annotations, s.Labels)
	}

	// Patches that only write are fine, and their result is scrubbed.
	res, err := e.try(OpPatchManifest, map[string]any{"manifestName": "secret creds", "location": e.ns,
		"options":   map[string]any{"mergeStrategy": "json"},
		"patchBody": []any{map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]any{"team": "a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), sentinel) || strings.Contains(string(b), encoded) {
		t.Errorf("patch result quotes the Secret's value: %s", b)
	}
}
