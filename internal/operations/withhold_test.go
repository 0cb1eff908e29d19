package operations

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The history keeps a task's operations without the values of the Secrets
// they deploy or patch, and everything else as sent.
func TestHistoryRequestWithholdsSecretValues(t *testing.T) {
	const sentinel = "SENTINEL-4711"
	ops := []op{
		{Type: "deployManifest", Account: "a", Description: json.RawMessage(`{"account": "a", "manifests": [
			{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "` + sentinel + `"}},
			{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "data": {"k": "` + sentinel + `"}}]},
			{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "visible"}}]}`)},
		{Type: "patchManifest", Account: "a", Description: json.RawMessage(`{"account": "a", "manifestName": "Secrets s",
			"patchBody": {"data": {"k": "` + sentinel + `"}}}`)},
		{Type: "patchManifest", Account: "a", Description: json.RawMessage(`{"account": "a", "manifestName": "secret\ts",
			"patchBody": {"data": {"k": "` + sentinel + `"}}}`)},
		{Type: "patchManifest", Account: "a", Description: json.RawMessage(`{"account": "a", "manifestName": "configMap c",
			"patchBody": {"data": {"k": "kept"}}}`)},
		{Type: "cleanupArtifacts", Account: "a", Description: json.RawMessage(`{"account": "a", "manifests": [
			{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s-v001"}, "data": {"k": "` + sentinel + `"}}]}`)},
		{Type: "scaleManifest", Account: "b", Description: json.RawMessage(`{"account": "b", "replicas": 3}`)},
	}
	b := historyRequest(ops)
	if strings.Contains(string(b), sentinel) {
		t.Errorf("history request holds a Secret's value: %s", b)
	}
	for _, want := range []string{`"visible"`, `"kept"`, withheldPatch, `"replicas":3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("history request lacks %s: %s", want, b)
		}
	}
	var back []op
	if err := json.Unmarshal(b, &back); err != nil || len(back) != len(ops) {
		t.Fatalf("history request does not decode as the task's operations: %v", err)
	}
	for i := range ops {
		if back[i].Type != ops[i].Type || back[i].Account != ops[i].Account {
			t.Errorf("operation %d: %s on %s, want %s on %s", i, back[i].Type, back[i].Account, ops[i].Type, ops[i].Account)
		}
	}
	var want bytes.Buffer
	_ = json.Compact(&want, ops[5].Description)
	if string(back[5].Description) != want.String() {
		t.Errorf("a description without Secrets changed: %s", back[3].Description)
	}
}
