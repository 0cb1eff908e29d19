package ops

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// runJobDesc is Clouddriver's KubernetesRunJobOperationDescription.
type runJobDesc struct {
	Account           string          `json:"account"`
	Credentials       string          `json:"credentials"` // the account's older name
	Application       string          `json:"application"`
	Manifest          json.RawMessage `json:"manifest"`
	Namespace         string          `json:"namespace"`
	RequiredArtifacts []Artifact      `json:"requiredArtifacts"`
	OptionalArtifacts []Artifact      `json:"optionalArtifacts"`
}

// parseRunJob turns a runJob into the deploy of one Job, as Clouddriver
// does: no name suffix; a Job with a name is recreated, one with only
// generateName is created.
func parseRunJob(payload []byte) (operation, error) {
	var d runJobDesc
	if err := decodeDescription(payload, &d); err != nil {
		return nil, err
	}
	if d.Account == "" {
		d.Account = d.Credentials
	}
	m, err := decodeObject("manifest", d.Manifest)
	if err != nil {
		return nil, err
	}
	if err := checkManifest("manifest", m); err != nil {
		return nil, err
	}
	if k := m["kind"].(string); k != "Job" {
		return nil, invalid("manifest.kind", "must be Job: only Jobs can be run, got %q", k)
	}
	if err := checkNamespace("namespace", d.Namespace); err != nil {
		return nil, err
	}
	if err := checkArtifacts("requiredArtifacts", d.RequiredArtifacts); err != nil {
		return nil, err
	}
	it := &manifest{field: "manifest", obj: &unstructured.Unstructured{Object: m}}
	app := d.Application
	if app == "" {
		app = it.obj.GetAnnotations()[AnnotationMonikerApplication]
	}
	if app == "" {
		return nil, invalid("application", "required: the Spinnaker application of the job")
	}
	if it.obj.GetName() != "" {
		ann := stringMapAt(it.obj.Object, true, "metadata", "annotations")
		delete(ann, AnnotationReplace)
		ann[AnnotationRecreate] = "true"
	}
	return &deployOp{runJob: true, items: []*manifest{it}, d: deployDesc{
		Account: d.Account, Application: app, Moniker: &monikerDesc{App: app},
		NamespaceOverride: d.Namespace, RequiredArtifacts: d.RequiredArtifacts,
		OptionalArtifacts: d.OptionalArtifacts, Source: "text",
	}}, nil
}
