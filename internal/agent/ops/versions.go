package ops

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var versionedName = regexp.MustCompile(`^(.+)-v(\d{3,})$`)

// nextVersion finds the versions of base already in the namespace and
// returns the version to deploy, and the name of the highest existing one:
// the newest version whose content (all but its metadata) has digest, as
// Clouddriver's ResourceVersioner reuses an identical earlier version;
// else the one after the highest (0 when there are none).
//
// same, when set, decides instead whether an existing version holds the
// content (a sensitive kind, compared in place: see sameSecret).
func (e *Executor) nextVersion(ctx context.Context, m *meta.RESTMapping, ns, base, artifactType, digest string,
	same func(context.Context, objectVersion) (bool, error)) (version int, previous string, reused bool, err error) {
	vs, err := e.versionsOf(ctx, m, ns, base, artifactType)
	if err != nil || len(vs) == 0 {
		return 0, "", false, err
	}
	last := vs[len(vs)-1]
	for _, v := range slices.Backward(vs) {
		match := digest != "" && v.digest == digest
		if same != nil && !v.terminating {
			if match, err = same(ctx, v); err != nil {
				return 0, "", false, err
			}
		}
		if match {
			return v.version, last.name, true, nil
		}
	}
	return last.version + 1, last.name, false, nil
}

// sameSecret tells whether the live Secret v holds what obj, a Secret
// manifest, would write: the same type, immutability and values (data,
// and stringData over it, compared as bytes). The values are read and
// compared here, in the agent, and nothing of them is kept or reported.
func (e *Executor) sameSecret(ctx context.Context, m *meta.RESTMapping, ns string, obj map[string]any, v objectVersion) (bool, error) {
	var live *unstructured.Unstructured
	err := e.do(ctx, "read "+v.name+" to compare it", func(ctx context.Context) (err error) {
		live, err = e.resource(m, ns).Get(ctx, v.name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		// Gone, or credentials that may write Secrets but not read them:
		// no reuse, a new version, as before reuse existed.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	want, ok := secretContent(obj, true)
	got, ok2 := secretContent(live.Object, false)
	return ok && ok2 && want.equal(got), nil
}

// secretBody is what a Secret holds besides its metadata.
type secretBody struct {
	typ       string
	immutable bool
	values    map[string][]byte
}

func (a secretBody) equal(b secretBody) bool {
	return a.typ == b.typ && a.immutable == b.immutable &&
		maps.EqualFunc(a.values, b.values, func(x, y []byte) bool { return bytes.Equal(x, y) })
}

// secretContent reads a Secret object; a manifest's stringData counts
// (over data), as the API server merges it. ok is false for anything
// malformed: no match then.
func secretContent(obj map[string]any, manifest bool) (secretBody, bool) {
	b := secretBody{typ: "Opaque", values: map[string][]byte{}}
	if t, _ := obj["type"].(string); t != "" {
		b.typ = t
	}
	b.immutable, _ = obj["immutable"].(bool)
	data, _ := obj["data"].(map[string]any)
	for k, x := range data {
		s, ok := x.(string)
		if !ok && x != nil { // null is stored as ""
			return b, false
		}
		v, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return b, false
		}
		b.values[k] = v
	}
	if manifest {
		sd, _ := obj["stringData"].(map[string]any)
		for k, x := range sd {
			s, ok := x.(string)
			if !ok && x != nil {
				return b, false
			}
			b.values[k] = []byte(s)
		}
	}
	return b, true
}

// objectVersion is an object of a versioned artifact.
type objectVersion struct {
	name    string
	version int
	// digest is the contentDigest it was deployed with: its
	// AnnotationContentDigest, else that of its last-applied configuration
	// (client-side apply, as Clouddriver deploys); "" if neither, or if
	// the object is being deleted (terminating).
	digest      string
	terminating bool
}

// contentDigest fingerprints what a manifest deploys besides its
// metadata (Clouddriver's nonMetadataEquals): two manifests with the same
// digest deploy the same content. "" if it does not encode.
func contentDigest(obj map[string]any) string {
	content := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "metadata" {
			content[k] = v
		}
	}
	b, err := json.Marshal(content) // map keys sorted: canonical
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// deployedDigest is the contentDigest an existing object was deployed
// with, from its annotations.
func deployedDigest(ann map[string]string) string {
	if d := ann[AnnotationContentDigest]; d != "" {
		return d
	}
	var last map[string]any
	if la := ann[AnnotationLastApplied]; la != "" && json.Unmarshal([]byte(la), &last) == nil {
		return contentDigest(last)
	}
	return ""
}

// versionsOf lists the objects of base in the namespace, oldest version
// first: objects of the kind whose artifact.spinnaker.io/name annotation
// is base (version from artifact.spinnaker.io/version), or whose name is
// base-vNNN. Only metadata is listed, never Secret contents.
func (e *Executor) versionsOf(ctx context.Context, m *meta.RESTMapping, ns, base, artifactType string) ([]objectVersion, error) {
	return e.listVersions(ctx, m, ns, base, func(name string, ann map[string]string) int {
		return versionOf(name, ann, base, artifactType)
	})
}

// artifactVersions lists, oldest first, only the objects that are
// versions of the artifact by their annotations (name, type, and the
// version): what may be deleted as its old versions. An object merely
// named base-vNNN, or annotated without the type, is not one.
func (e *Executor) artifactVersions(ctx context.Context, m *meta.RESTMapping, ns, base, artifactType string) ([]objectVersion, error) {
	return e.listVersions(ctx, m, ns, base, func(_ string, ann map[string]string) int {
		if ann[AnnotationArtifactName] != base || ann[AnnotationArtifactType] != artifactType {
			return -1
		}
		if loc := ann[AnnotationArtifactLocation]; loc != "" && m.Scope.Name() == meta.RESTScopeNameNamespace && loc != ns {
			return -1
		}
		if s, ok := strings.CutPrefix(ann[AnnotationArtifactVersion], "v"); ok {
			if n, err := strconv.Atoi(s); err == nil && n >= 0 {
				return n
			}
		}
		return -1
	})
}

// listVersions lists the objects of the kind in the namespace that
// version (-1: not one) places, oldest version first.
func (e *Executor) listVersions(ctx context.Context, m *meta.RESTMapping, ns, base string, version func(name string, ann map[string]string) int) ([]objectVersion, error) {
	var out []objectVersion
	opts := metav1.ListOptions{Limit: 500}
	for {
		var list *metav1.PartialObjectMetadataList
		err := e.do(ctx, "list versions of "+base, func(ctx context.Context) (err error) {
			r := e.meta.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				list, err = r.Namespace(ns).List(ctx, opts)
			} else {
				list, err = r.List(ctx, opts)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, it := range list.Items {
			if v := version(it.Name, it.Annotations); v >= 0 {
				ov := objectVersion{name: it.Name, version: v, terminating: it.DeletionTimestamp != nil}
				if !ov.terminating { // one going away is no version to reuse
					ov.digest = deployedDigest(it.Annotations)
				}
				out = append(out, ov)
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	slices.SortStableFunc(out, func(a, b objectVersion) int { return cmp.Compare(a.version, b.version) })
	return out, nil
}

// versionOf is the version of an object of base, or -1: the larger of its
// artifact annotation's and its name's (a manifest deployed again may keep
// an older version annotation under a newer name).
func versionOf(name string, ann map[string]string, base, artifactType string) int {
	v := -1
	if ann[AnnotationArtifactName] == base && (ann[AnnotationArtifactType] == "" || ann[AnnotationArtifactType] == artifactType) {
		if s, ok := strings.CutPrefix(ann[AnnotationArtifactVersion], "v"); ok {
			if n, err := strconv.Atoi(s); err == nil && n >= 0 {
				v = n
			}
		}
	}
	if mm := versionedName.FindStringSubmatch(name); mm != nil && mm[1] == base {
		if n, err := strconv.Atoi(mm[2]); err == nil {
			v = max(v, n)
		}
	}
	return v
}
