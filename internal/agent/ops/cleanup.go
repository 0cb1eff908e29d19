package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OpCleanupArtifacts deletes the old versions of deployed artifacts beyond
// their strategy.spinnaker.io/max-version-history (what Orca sends after a
// deploy, with the manifests the deploy returned).
const OpCleanupArtifacts = "cleanupArtifacts"

type cleanupDesc struct {
	Account   string            `json:"account"`
	Manifests []json.RawMessage `json:"manifests"`
}

type cleanupOp struct {
	d     cleanupDesc
	items []*manifest
}

func parseCleanup(payload []byte) (operation, error) {
	var d cleanupDesc
	if err := decodeDescription(payload, &d); err != nil {
		return nil, err
	}
	items, err := parseManifests("manifests", d.Manifests)
	if err != nil {
		return nil, err
	}
	return &cleanupOp{d: d, items: items}, nil
}

func (o *cleanupOp) check(_ context.Context, e *Executor) error {
	for _, it := range o.items {
		if _, err := it.resolve(e); err != nil {
			return err
		}
	}
	return nil
}

// run deletes, for each manifest carrying a max-version-history and an
// artifact name, the versions of that artifact (same kind, location and
// name) older than the newest max-version-history ones, as Clouddriver's
// KubernetesCleanupArtifactsOperation does. The newest version always
// stays, whatever the annotation says.
func (o *cleanupOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	var res Result
	for _, it := range o.items {
		ann := it.obj.GetAnnotations()
		keep := strategyOf(ann).maxVersionHistory
		base := ann[AnnotationArtifactName]
		if keep == nil || base == "" {
			continue
		}
		gk := it.mapping.GroupVersionKind.GroupKind()
		ns := ann[AnnotationArtifactLocation]
		if ns == "" {
			ns = it.obj.GetNamespace()
		}
		ns = e.namespaceFor(it.mapping, ns)
		// Not while a deploy of the artifact numbers a new version.
		unlock, err := e.opts.Versions.lock(ctx, []string{o.d.Account + "/" + KindName(gk) + "/" + ns + "/" + base})
		if err != nil {
			return Result{}, err
		}
		err = o.prune(ctx, e, it, ns, base, max(*keep, 1), &res)
		unlock()
		if err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func (o *cleanupOp) prune(ctx context.Context, e *Executor, it *manifest, ns, base string, keep int, res *Result) error {
	gk := it.mapping.GroupVersionKind.GroupKind()
	vs, err := e.artifactVersions(ctx, it.mapping, ns, base, "kubernetes/"+KindName(gk))
	if err != nil {
		return err
	}
	// The version the deploy wrote is kept and counts among those kept,
	// whatever its number: a deploy may have reused an older one.
	current := it.obj.GetName()
	if i := slices.IndexFunc(vs, func(v objectVersion) bool { return v.name == current }); i >= 0 {
		vs = slices.Delete(vs, i, i+1)
		keep--
	}
	if len(vs) <= keep {
		return nil
	}
	background := metav1.DeletePropagationBackground
	for _, v := range vs[:len(vs)-keep] {
		err := e.do(ctx, "delete "+fullName(gk, v.name), func(ctx context.Context) error {
			err := e.resource(it.mapping, ns).Delete(ctx, v.name, metav1.DeleteOptions{PropagationPolicy: &background})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("delete old version %s: %w", fullName(gk, v.name), err)
		}
		res.addName(ns, fullName(gk, v.name))
		e.opts.Logger.Info("deleted old version", "object", fullName(gk, v.name), "namespace", ns, "maxVersionHistory", keep)
	}
	return nil
}
