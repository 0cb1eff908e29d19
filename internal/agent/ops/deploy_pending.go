package ops

// A deploy may carry a CustomResourceDefinition and objects of its kind
// (Helm-baked charts): the objects wait, checked, until the API server
// serves the kind, as Clouddriver does since spinnaker/clouddriver#4298.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// crdGroupKind is CustomResourceDefinition's.
var crdGroupKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// definesKind reports whether a CustomResourceDefinition of this deploy
// defines gvk (its group, kind and one of its versions).
func (o *deployOp) definesKind(gvk schema.GroupVersionKind) bool {
	for _, it := range o.items {
		if it.obj.GroupVersionKind().GroupKind() != crdGroupKind {
			continue
		}
		group, _, _ := unstructured.NestedString(it.obj.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(it.obj.Object, "spec", "names", "kind")
		if group != gvk.Group || kind != gvk.Kind {
			continue
		}
		versions, _, _ := unstructured.NestedSlice(it.obj.Object, "spec", "versions")
		for _, v := range versions {
			if m, ok := v.(map[string]any); ok && m["name"] == gvk.Version && m["served"] == true {
				return true
			}
		}
	}
	return false
}

// pendingWait bounds the wait for the API server to serve the kinds the
// deploy's CRDs define (they are usually served within a second or two).
const pendingWait = time.Minute

// awaitPending resolves the pending items once the API server serves the
// kinds their CRDs (applied by now) define: for at most pendingWait, and
// a few seconds less than ctx leaves, so that the agent reports why.
func (o *deployOp) awaitPending(ctx context.Context, e *Executor) error {
	wait := pendingWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-3*time.Second)
	}
	ctx, cancel := context.WithTimeout(ctx, max(wait, time.Second))
	defer cancel()
	for _, it := range o.pending {
		for {
			e.refreshDiscovery()
			_, err := it.resolve(e)
			var ve *ValidationError
			if err == nil {
				o.place(e, it)
				break
			}
			if !errors.As(err, &ve) || !meta.IsNoMatchError(ve.Err) {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: kind %s not served by the API server after its CustomResourceDefinition was applied: %w",
					it.field, it.obj.GroupVersionKind(), ctx.Err())
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// precheckPending checks, on copies, what prepare refuses of the objects
// waiting for their CRD, and binds their artifacts into res, before
// anything of the deploy is written; it returns how many of them the
// labelSelectors select.
func (o *deployOp) precheckPending(all map[string]Artifact, res *Result, binding bool) (int, error) {
	selected := 0
	for _, it := range o.pending {
		obj := it.obj.DeepCopy()
		if err := o.checkStrategy(it.field, strategyOf(obj.GetAnnotations())); err != nil {
			return 0, err
		}
		ns := o.d.NamespaceOverride
		if ns == "" {
			ns = obj.GetNamespace()
		}
		if binding {
			res.BoundArtifacts = addArtifacts(res.BoundArtifacts, bindArtifacts(obj.Object, ns, o.d.Account, sortedArtifacts(all))...)
		}
		if o.selector != nil {
			applyMoniker(obj.Object, *o.d.Moniker, o.d.SkipSpecTemplateLabels.or(false))
			if o.selector.Matches(labels.Set(obj.GetLabels())) {
				selected++
			}
		}
	}
	return selected, nil
}
