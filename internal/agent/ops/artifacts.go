package ops

import "strings"

// Artifact types the binder knows, as Clouddriver's Replacer does.
const (
	artifactDockerImage = "docker/image"
	artifactConfigMap   = "kubernetes/configMap"
	artifactSecret      = "kubernetes/secret"
	artifactDeployment  = "kubernetes/deployment"
	artifactReplicaSet  = "kubernetes/replicaSet"
)

// binder substitutes artifacts into one manifest, or, with find set, lists
// the artifacts it references.
type binder struct {
	ns, account string
	artifacts   []Artifact
	bound       []Artifact
	find        bool
}

// bindArtifacts replaces references in obj by the artifacts that match them,
// like Clouddriver's artifact replacers, and returns the artifacts used:
//
//   - docker/image: containers[].image and initContainers[].image of every
//     pod template (and of a Pod), when the image without tag or digest is
//     the artifact's name; the reference replaces it.
//   - kubernetes/configMap, kubernetes/secret: volumes (configMap.name,
//     secret.secretName, projected sources), env valueFrom key refs and
//     envFrom refs of those pod specs; the reference (the versioned name)
//     replaces the name.
//   - kubernetes/deployment, kubernetes/replicaSet: an
//     HorizontalPodAutoscaler's spec.scaleTargetRef.name.
//
// Kubernetes artifacts only bind within their namespace (location) and
// account (metadata.account) when those are set.
func bindArtifacts(obj map[string]any, ns, account string, artifacts []Artifact) []Artifact {
	if len(artifacts) == 0 {
		return nil
	}
	b := &binder{ns: ns, account: account, artifacts: artifacts}
	b.object(obj)
	return b.bound
}

// FindArtifacts lists the artifacts obj (a manifest in namespace ns)
// references, in the places bindArtifacts would replace them: each image
// as a docker/image (its name without tag or digest), each ConfigMap or
// Secret used by a pod spec, and an HorizontalPodAutoscaler's target, as
// Kubernetes artifacts in namespace ns. Clouddriver's replacers find the
// same, but give Kubernetes artifacts no location, and for a Pod only its
// containers' images (named with their tag). obj is not modified.
func FindArtifacts(obj map[string]any, ns string) []Artifact {
	b := &binder{ns: ns, find: true}
	b.object(obj)
	return b.bound
}

// object visits the pod specs of obj and an HorizontalPodAutoscaler's target.
func (b *binder) object(obj map[string]any) {
	kind, _ := obj["kind"].(string)
	if kind == "Pod" {
		if spec, ok := obj["spec"].(map[string]any); ok {
			b.podSpec(spec)
		}
	}
	b.walk(obj)
	if kind == "HorizontalPodAutoscaler" {
		if ref := stringMapAt(obj, false, "spec", "scaleTargetRef"); ref != nil {
			switch ref["kind"] {
			case "Deployment", "deployment":
				b.replace(ref, "name", artifactDeployment)
			case "ReplicaSet", "replicaSet":
				b.replace(ref, "name", artifactReplicaSet)
			}
		}
	}
}

// walk finds every spec.template.spec below v ($..spec.template.spec).
func (b *binder) walk(v any) {
	switch x := v.(type) {
	case map[string]any:
		if ps := stringMapAt(x, false, "spec", "template", "spec"); ps != nil {
			b.podSpec(ps)
		}
		for _, c := range x {
			b.walk(c)
		}
	case []any:
		for _, c := range x {
			b.walk(c)
		}
	}
}

func (b *binder) podSpec(ps map[string]any) {
	for _, key := range []string{"containers", "initContainers"} {
		for _, c := range objects(ps[key]) {
			b.replace(c, "image", artifactDockerImage)
			for _, env := range objects(c["env"]) {
				if ref := stringMapAt(env, false, "valueFrom", "configMapKeyRef"); ref != nil {
					b.replace(ref, "name", artifactConfigMap)
				}
				if ref := stringMapAt(env, false, "valueFrom", "secretKeyRef"); ref != nil {
					b.replace(ref, "name", artifactSecret)
				}
			}
			for _, env := range objects(c["envFrom"]) {
				if ref := stringMapAt(env, false, "configMapRef"); ref != nil {
					b.replace(ref, "name", artifactConfigMap)
				}
				if ref := stringMapAt(env, false, "secretRef"); ref != nil {
					b.replace(ref, "name", artifactSecret)
				}
			}
		}
	}
	for _, v := range objects(ps["volumes"]) {
		if ref := stringMapAt(v, false, "configMap"); ref != nil {
			b.replace(ref, "name", artifactConfigMap)
		}
		if ref := stringMapAt(v, false, "secret"); ref != nil {
			b.replace(ref, "secretName", artifactSecret)
		}
		for _, src := range objects(stringMapAt(v, false, "projected")["sources"]) {
			if ref := stringMapAt(src, false, "configMap"); ref != nil {
				b.replace(ref, "name", artifactConfigMap)
			}
			if ref := stringMapAt(src, false, "secret"); ref != nil {
				b.replace(ref, "name", artifactSecret)
			}
		}
	}
}

// replace substitutes m[key] with the reference of the first artifact of
// type typ whose name it names.
func (b *binder) replace(m map[string]any, key, typ string) {
	cur, ok := m[key].(string)
	if !ok || cur == "" {
		return
	}
	name := cur
	if typ == artifactDockerImage {
		name = imageName(cur)
	}
	if b.find {
		a := Artifact{Type: typ, Name: name, Reference: cur}
		if typ != artifactDockerImage {
			a.Location = b.ns
		}
		b.bound = addArtifacts(b.bound, a)
		return
	}
	for _, a := range b.artifacts {
		if a.Type != typ || a.Name != name || a.Reference == "" {
			continue
		}
		if typ != artifactDockerImage {
			if (a.Location != "" && a.Location != b.ns) || (a.account() != "" && b.account != "" && a.account() != b.account) {
				continue
			}
		}
		m[key] = a.Reference
		b.bound = addArtifacts(b.bound, a)
		return
	}
}

// imageName strips the digest or tag from an image reference.
func imageName(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		return ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[:i]
	}
	return ref
}

// objects returns the object elements of a list value.
func objects(v any) []map[string]any {
	l, _ := v.([]any)
	out := make([]map[string]any, 0, len(l))
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
