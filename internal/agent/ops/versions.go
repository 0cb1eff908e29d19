package ops

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var versionedName = regexp.MustCompile(`^(.+)-v(\d{3,})$`)

// nextVersion finds the versions of base already in the namespace and
// returns the next one (0 when there are none) and the name of the highest
// existing one. Versions are read from objects of the same kind whose
// artifact.spinnaker.io/name annotation is base (version from
// artifact.spinnaker.io/version), or whose name is base-vNNN. Only
// metadata is listed, never Secret contents.
func (e *Executor) nextVersion(ctx context.Context, m *meta.RESTMapping, ns, base, artifactType string) (int, string, error) {
	maxV, latest := -1, ""
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
			return 0, "", err
		}
		for _, it := range list.Items {
			v := versionOf(it.Name, it.Annotations, base, artifactType)
			if v > maxV {
				maxV, latest = v, it.Name
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	return maxV + 1, latest, nil
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
