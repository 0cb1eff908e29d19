package ops

import (
	"encoding/json"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/agent/scrub"
)

// Result is the outcome of an operation in the shape of Clouddriver's
// OperationResult. All four collections are always present in its JSON
// (empty rather than null), as Clouddriver sends them.
type Result struct {
	// ManifestNamesByNamespace lists, per namespace ("" for cluster-scoped
	// objects), the objects the operation wrote or deleted as "kind name"
	// in Clouddriver's spelling (e.g. "deployment web", "configMap cfg-v001").
	ManifestNamesByNamespace map[string][]string `json:"manifestNamesByNamespace"`
	// Manifests are the objects as the API server returned them after the
	// operation, without managedFields and with Secret values blanked.
	Manifests []map[string]any `json:"manifests"`
	// CreatedArtifacts are the kubernetes/<kind> artifacts of the deployed
	// objects (deployManifest, runJob).
	CreatedArtifacts []Artifact `json:"createdArtifacts"`
	// BoundArtifacts are the artifacts substituted into the manifests
	// (image references, versioned ConfigMap and Secret names, ...).
	BoundArtifacts []Artifact `json:"boundArtifacts"`
	// DeployedNamesByLocation is runJob's copy of ManifestNamesByNamespace,
	// as Clouddriver's KubernetesRunJobDeploymentResult carries it.
	DeployedNamesByLocation map[string][]string `json:"deployedNamesByLocation,omitempty"`
}

// MarshalJSON writes nil collections as empty ones.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	if p.ManifestNamesByNamespace == nil {
		p.ManifestNamesByNamespace = map[string][]string{}
	}
	if p.Manifests == nil {
		p.Manifests = []map[string]any{}
	}
	if p.CreatedArtifacts == nil {
		p.CreatedArtifacts = []Artifact{}
	}
	if p.BoundArtifacts == nil {
		p.BoundArtifacts = []Artifact{}
	}
	return json.Marshal(p)
}

// Artifact is a Spinnaker (kork) artifact, as found in descriptions
// (requiredArtifacts, optionalArtifacts, allArtifacts) and results.
type Artifact struct {
	Type            string         `json:"type"`
	CustomKind      bool           `json:"customKind,omitempty"`
	Name            string         `json:"name,omitempty"`
	Version         string         `json:"version,omitempty"`
	Location        string         `json:"location,omitempty"`
	Reference       string         `json:"reference,omitempty"`
	Metadata        map[string]any `json:"metadata,omitempty"`
	ArtifactAccount string         `json:"artifactAccount,omitempty"`
	Provenance      string         `json:"provenance,omitempty"`
	UUID            string         `json:"uuid,omitempty"`
}

// key identifies an artifact the way Clouddriver de-duplicates them: type,
// name and location.
func (a Artifact) key() string { return a.Type + "\x00" + a.Name + "\x00" + a.Location }

// account is the account recorded in the artifact's metadata, if any.
func (a Artifact) account() string {
	s, _ := a.Metadata["account"].(string)
	return s
}

// addName records "kind name" under namespace ns, once.
func (r *Result) addName(ns, kindName string) {
	if r.ManifestNamesByNamespace == nil {
		r.ManifestNamesByNamespace = map[string][]string{}
	}
	if !slices.Contains(r.ManifestNamesByNamespace[ns], kindName) {
		r.ManifestNamesByNamespace[ns] = append(r.ManifestNamesByNamespace[ns], kindName)
	}
}

// addObject records an object returned by the API server: its name, and a
// scrubbed copy of it among Manifests.
func (r *Result) addObject(gk schema.GroupKind, obj *unstructured.Unstructured) {
	if obj == nil {
		return
	}
	r.addName(obj.GetNamespace(), fullName(gk, obj.GetName()))
	cp := obj.DeepCopy().Object
	scrub.ScrubMap(cp)
	r.Manifests = append(r.Manifests, cp)
}

// addArtifacts appends artifacts to dst, skipping those already there.
func addArtifacts(dst []Artifact, as ...Artifact) []Artifact {
	for _, a := range as {
		if !slices.ContainsFunc(dst, func(b Artifact) bool { return b.key() == a.key() && b.Reference == a.Reference }) {
			dst = append(dst, a)
		}
	}
	return dst
}
