package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
)

// useSSA decides between server-side and client-side apply for an object.
func (e *Executor) useSSA(kind string, ann map[string]string) bool {
	// As the Scale Agent: a global always or never decides for every
	// kind; otherwise a kind's own policy replaces the global one; always
	// and never decide; then the object's annotation; then the policy's
	// own choice (allowed: client-side, preferred: server-side).
	mode := e.opts.ServerSideApply
	if m, ok := e.ssaKinds[strings.ToLower(kind)]; ok && (mode == SSAAllowed || mode == SSAPreferred) {
		mode = m
	}
	switch mode {
	case SSAAlways:
		return true
	case SSANever:
		return false
	}
	for _, k := range []string{AnnotationServerSideApply, AnnotationArmoryServerSideApply} {
		switch strings.ToLower(strings.TrimSpace(ann[k])) {
		case "true", "force-conflicts", "enabled":
			return true
		case "false", "disabled":
			return false
		}
	}
	return mode == SSAPreferred
}

// deployObject sends one prepared manifest following its strategy:
// recreate (delete, wait, apply), replace (create or PUT), or apply
// (server-side or client-side). Objects with only generateName are created.
func (e *Executor) deployObject(ctx context.Context, m *meta.RESTMapping, obj *unstructured.Unstructured, st strategy) (*unstructured.Unstructured, error) {
	stripServerFields(obj)
	ri := e.resource(m, obj.GetNamespace())
	ssa := e.useSSA(obj.GetKind(), obj.GetAnnotations())
	if obj.GetName() == "" {
		if !ssa {
			if err := setLastApplied(obj); err != nil {
				return nil, err
			}
		}
		// Not retried on timeouts: a second create would make a second object.
		out, err := ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: e.opts.FieldManager})
		if err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
		return out, nil
	}
	if st.recreate {
		if err := e.deleteAndWait(ctx, ri, obj.GetName()); err != nil {
			return nil, err
		}
	}
	if st.replace {
		return e.replace(ctx, ri, obj, ssa)
	}
	if ssa {
		var out *unstructured.Unstructured
		builtIn := NativeGroup(m.GroupVersionKind.Group)
		err := e.do(ctx, "server-side apply", func(ctx context.Context) (err error) {
			out, err = ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: e.opts.FieldManager, Force: true})
			if builtIn && (typedPatchError(err) || conversionError(err)) {
				// A built-in kind's schema and Go type do not change: the
				// same request fails the same way. (A custom resource's may
				// be catching up with its CRD just updated: retried.)
				return permanent{err}
			}
			return err
		})
		return out, err
	}
	return e.clientSideApply(ctx, ri, m.GroupVersionKind, obj)
}

// setLastApplied stores the object, without the annotation itself, in its
// kubectl.kubernetes.io/last-applied-configuration annotation, as kubectl
// apply does, and returns the modified object's JSON.
func setLastApplied(obj *unstructured.Unstructured) error {
	ann := obj.GetAnnotations()
	delete(ann, AnnotationLastApplied)
	if len(ann) == 0 {
		ann = nil
	}
	obj.SetAnnotations(ann)
	b, err := obj.MarshalJSON()
	if err != nil {
		return permanent{fmt.Errorf("encode manifest: %w", err)}
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationLastApplied] = string(b)
	obj.SetAnnotations(ann)
	return nil
}

// clientSideApply is kubectl's client-side apply: create with the
// last-applied annotation, or patch the live object with a three-way merge
// of last-applied, the manifest and the live object (strategic merge for
// kinds with Go types, JSON merge otherwise).
func (e *Executor) clientSideApply(ctx context.Context, ri dynamic.ResourceInterface, gvk schema.GroupVersionKind, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if err := setLastApplied(obj); err != nil {
		return nil, err
	}
	modified, err := obj.MarshalJSON()
	if err != nil {
		return nil, permanent{err}
	}
	name := obj.GetName()
	var out *unstructured.Unstructured
	err = e.do(ctx, "client-side apply", func(ctx context.Context) error {
		cur, err := ri.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out, err = ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: e.opts.FieldManager})
			return err
		}
		if err != nil {
			return err
		}
		current, err := cur.MarshalJSON()
		if err != nil {
			return permanent{err}
		}
		original := []byte(cur.GetAnnotations()[AnnotationLastApplied])
		patch, pt, err := threeWayPatch(gvk, original, modified, current)
		if err != nil {
			return permanent{fmt.Errorf("compute patch: %w", err)}
		}
		if string(patch) == "{}" {
			out = cur
			return nil
		}
		out, err = ri.Patch(ctx, name, pt, patch, metav1.PatchOptions{FieldManager: e.opts.FieldManager})
		return err
	})
	return out, err
}

func threeWayPatch(gvk schema.GroupVersionKind, original, modified, current []byte) ([]byte, types.PatchType, error) {
	pre := []mergepatch.PreconditionFunc{mergepatch.RequireKeyUnchanged("apiVersion"),
		mergepatch.RequireKeyUnchanged("kind"), mergepatch.RequireMetadataKeyUnchanged("name")}
	if typed, err := scheme.Scheme.New(gvk); err == nil {
		lookup, err := strategicpatch.NewPatchMetaFromStruct(typed)
		if err != nil {
			return nil, "", err
		}
		p, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, lookup, true, pre...)
		return p, types.StrategicMergePatchType, err
	}
	p, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, current, pre...)
	return p, types.MergePatchType, err
}

// replace is strategy.spinnaker.io/replace: create, or PUT over the live
// object (kubectl replace).
func (e *Executor) replace(ctx context.Context, ri dynamic.ResourceInterface, obj *unstructured.Unstructured, ssa bool) (*unstructured.Unstructured, error) {
	if !ssa {
		if err := setLastApplied(obj); err != nil {
			return nil, err
		}
	}
	var out *unstructured.Unstructured
	err := e.do(ctx, "replace", func(ctx context.Context) error {
		cur, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			obj.SetResourceVersion("")
			out, err = ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: e.opts.FieldManager})
			return err
		}
		if err != nil {
			return err
		}
		obj.SetResourceVersion(cur.GetResourceVersion())
		out, err = ri.Update(ctx, obj, metav1.UpdateOptions{FieldManager: e.opts.FieldManager})
		return err
	})
	return out, err
}

// deleteAndWait deletes an object (background propagation) if it exists
// and waits until it is gone, for strategy.spinnaker.io/recreate.
func (e *Executor) deleteAndWait(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	bg := metav1.DeletePropagationBackground
	err := e.do(ctx, "delete before recreate", func(ctx context.Context) error {
		err := ri.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, e.opts.DeleteWaitTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := ri.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s to be deleted before recreating it: %w", name, err)
	}
	return nil
}

// copyReplicas is strategy.spinnaker.io/use-source-capacity: the replicas
// of the live source object (the same name, or the previous version) are
// kept instead of the manifest's.
func (e *Executor) copyReplicas(ctx context.Context, m *meta.RESTMapping, ns, source string, obj *unstructured.Unstructured) error {
	if source == "" {
		return nil
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "replicas"); !ok && !hasScale(m) {
		return nil
	}
	var cur *unstructured.Unstructured
	err := e.do(ctx, "read source capacity", func(ctx context.Context) (err error) {
		cur, err = e.resource(m, ns).Get(ctx, source, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cur, err = nil, nil
		}
		return err
	})
	if err != nil || cur == nil {
		return err
	}
	if n, ok, _ := unstructured.NestedInt64(cur.Object, "spec", "replicas"); ok {
		return unstructured.SetNestedField(obj.Object, n, "spec", "replicas")
	}
	return nil
}

func hasScale(m *meta.RESTMapping) bool {
	switch m.GroupVersionKind.GroupKind() {
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}, schema.GroupKind{Group: "apps", Kind: "ReplicaSet"},
		schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		return true
	}
	return false
}

// marshalAnnotation encodes v as an annotation value.
func marshalAnnotation(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
