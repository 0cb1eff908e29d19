package operations

import (
	"encoding/json"
	"strings"

	"github.com/kubesvc/kubesvc/internal/agent/scrub"
)

// withheldPatch replaces the patch body of a sensitive object in the
// history.
const withheldPatch = "(withheld: a patch of a Secret may hold its values)"

// historyRequest encodes a task's operations for kubesvc_ops_history
// without the values of sensitive objects (Secrets): the manifests of a
// deploy are scrubbed as the agent scrubs what it streams, and the body of
// a patch of a Secret is withheld. The history is kept for weeks and
// served by GET /armory/agent/operations/{id}; the agent gets the
// operations as sent.
func historyRequest(ops []op) []byte {
	out := make([]op, len(ops))
	for i, o := range ops {
		out[i] = o
		if d := withheldDescription(o.Type, o.Description); d != nil {
			out[i].Description = d
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// withheldDescription returns the description without sensitive values,
// or nil when it has none.
func withheldDescription(typ string, desc json.RawMessage) json.RawMessage {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(desc)))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return nil
	}
	changed := false
	switch typ {
	case "deployManifest", "runJob", "cleanupArtifacts":
		for _, key := range []string{"manifests", "manifest"} {
			switch v := m[key].(type) {
			case []any:
				for _, x := range v {
					if obj, ok := x.(map[string]any); ok && scrub.ScrubMap(obj) {
						changed = true
					}
				}
			case map[string]any:
				if scrub.ScrubMap(v) {
					changed = true
				}
			}
		}
	case "patchManifest":
		name, _ := m["manifestName"].(string)
		kind := ""
		if f := strings.Fields(name); len(f) > 0 { // as the agent reads it
			kind = f[0]
		}
		if isSecretKind(kind) && m["patchBody"] != nil {
			m["patchBody"] = withheldPatch
			changed = true
		}
	}
	if !changed {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

// isSecretKind reports whether a manifestName's kind names Secrets, as
// the agent resolves it (kind or resource, singular or plural, any case,
// optionally with its group).
func isSecretKind(kind string) bool {
	kind, group, _ := strings.Cut(strings.ToLower(kind), ".")
	return (kind == "secret" || kind == "secrets") && (group == "" || group == "core" || group == "v1")
}
