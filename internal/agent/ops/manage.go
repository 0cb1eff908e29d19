package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubesvc/kubesvc/internal/agent/scrub"
)

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// get reads a target's live object.
func (e *Executor) get(ctx context.Context, t *target) (*unstructured.Unstructured, error) {
	var out *unstructured.Unstructured
	err := e.do(ctx, "get "+t.String(), func(ctx context.Context) (err error) {
		out, err = e.resource(t.mapping, t.namespace).Get(ctx, t.name, metav1.GetOptions{})
		return err
	})
	return out, err
}

// patch patches a target and returns the patched object.
func (e *Executor) patch(ctx context.Context, t *target, pt types.PatchType, body []byte, sub ...string) (*unstructured.Unstructured, error) {
	what := "patch " + t.String()
	if len(sub) > 0 {
		what += " (" + strings.Join(sub, "/") + ")"
	}
	var out *unstructured.Unstructured
	run := e.do
	if pt == types.JSONPatchType {
		run = e.doOnce // "add" to a list twice adds twice
	}
	err := run(ctx, what, func(ctx context.Context) (err error) {
		out, err = e.resource(t.mapping, t.namespace).Patch(ctx, t.name, pt, body, metav1.PatchOptions{FieldManager: e.opts.FieldManager}, sub...)
		return err
	})
	if err == nil {
		e.opts.Logger.Info("patched object", "object", t.String(), "patchType", string(pt))
	}
	return out, err
}

// controlledPods lists the Pods in ns whose controller is uid.
func (e *Executor) controlledPods(ctx context.Context, ns string, uid types.UID) ([]*unstructured.Unstructured, error) {
	var list *unstructured.UnstructuredList
	err := e.do(ctx, "list pods", func(ctx context.Context) (err error) {
		list, err = e.dyn.Resource(podsGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for i := range list.Items {
		if c := metav1.GetControllerOfNoCopy(&list.Items[i]); c != nil && c.UID == uid {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// targetDesc is the part every single-target description shares.
type targetDesc struct {
	Account      string `json:"account"`
	ManifestName string `json:"manifestName"`
	Location     string `json:"location"`
}

// scaleDesc is Clouddriver's KubernetesScaleManifestDescription.
type scaleDesc struct {
	targetDesc
	Replicas optInt `json:"replicas"`
}

type scaleOp struct {
	d scaleDesc
	t target
}

func parseScale(payload []byte) (operation, error) {
	var d scaleDesc
	if err := decodeDescription(payload, &d); err != nil {
		return nil, err
	}
	t, err := parseTarget(d.ManifestName, d.Location)
	if err != nil {
		return nil, err
	}
	if !d.Replicas.set {
		return nil, invalid("replicas", "required")
	}
	if d.Replicas.v < 0 || d.Replicas.v > 1<<31-1 {
		return nil, invalid("replicas", "must be between 0 and 2147483647, got %d", d.Replicas.v)
	}
	return &scaleOp{d: d, t: t}, nil
}

func (o *scaleOp) check(ctx context.Context, e *Executor) error { return o.t.resolve(ctx, e) }

// run sets the replicas through the scale subresource (kubectl scale).
func (o *scaleOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	if _, err := e.get(ctx, &o.t); err != nil {
		return Result{}, err
	}
	body := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, o.d.Replicas.v)
	if _, err := o.t.patchScale(ctx, e, body); err != nil {
		return Result{}, err
	}
	obj, err := e.get(ctx, &o.t)
	if err != nil {
		return Result{}, err
	}
	var res Result
	res.addObject(o.t.gk(), obj)
	return res, nil
}

func (t *target) patchScale(ctx context.Context, e *Executor, body []byte) (*unstructured.Unstructured, error) {
	out, err := e.patch(ctx, t, types.MergePatchType, body, "scale")
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s cannot be scaled (no scale subresource): %w", t.String(), err)
	}
	return out, err
}

// patchDesc is Clouddriver's KubernetesPatchManifestDescription.
type patchDesc struct {
	targetDesc
	PatchBody json.RawMessage `json:"patchBody"`
	Options   struct {
		MergeStrategy string  `json:"mergeStrategy"`
		Record        optBool `json:"record"`
	} `json:"options"`
	RequiredArtifacts []Artifact `json:"requiredArtifacts"`
	AllArtifacts      []Artifact `json:"allArtifacts"`
}

type patchOp struct {
	d        patchDesc
	t        target
	strategy string
	body     any
}

func parsePatch(payload []byte) (operation, error) {
	var d patchDesc
	if err := decodeDescription(payload, &d); err != nil {
		return nil, err
	}
	t, err := parseTarget(d.ManifestName, d.Location)
	if err != nil {
		return nil, err
	}
	o := &patchOp{d: d, t: t, strategy: strings.ToLower(d.Options.MergeStrategy)}
	if o.strategy == "" {
		o.strategy = "strategic"
	}
	raw := bytes.TrimSpace(d.PatchBody)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, invalid("patchBody", "required")
	}
	switch o.strategy {
	case "strategic", "merge":
		if raw[0] != '{' {
			return nil, invalid("patchBody", "must be a JSON object with mergeStrategy %s", o.strategy)
		}
	case "json":
		if raw[0] != '[' {
			return nil, invalid("patchBody", "must be a list of JSON patch operations with mergeStrategy json")
		}
	default:
		return nil, invalid("options.mergeStrategy", "must be strategic, merge or json, got %q", d.Options.MergeStrategy)
	}
	if o.body, err = decodeAny("patchBody", raw); err != nil {
		return nil, err
	}
	if l, ok := o.body.([]any); ok {
		for i, x := range l {
			op, ok := x.(map[string]any)
			f := fmt.Sprintf("patchBody[%d]", i)
			if !ok {
				return nil, invalid(f, "must be an object")
			}
			if s, _ := op["op"].(string); s == "" {
				return nil, invalid(f+".op", "required")
			}
			if _, ok := op["path"].(string); !ok {
				return nil, invalid(f+".path", "required (a JSON pointer string)")
			}
		}
	}
	return o, checkArtifacts("requiredArtifacts", d.RequiredArtifacts)
}

func (o *patchOp) check(ctx context.Context, e *Executor) error {
	if err := o.t.resolve(ctx, e); err != nil {
		return err
	}
	if o.strategy == "strategic" && !scheme.Scheme.Recognizes(o.t.mapping.GroupVersionKind) {
		return invalid("options.mergeStrategy", "strategic merge patch is not supported for %s (no built-in type); use merge or json", KindName(o.t.gk()))
	}
	if l, ok := o.body.([]any); ok {
		gvk := o.t.mapping.GroupVersionKind
		if scrub.IsSensitive(gvk.GroupVersion().String(), gvk.Kind) {
			return checkSensitivePatch(gvk.GroupKind(), l)
		}
	}
	return nil
}

// run patches the target; strategic and merge patches get artifacts bound
// first, as in Clouddriver (json patches do not).
func (o *patchOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	var res Result
	pt := types.JSONPatchType
	if m, ok := o.body.(map[string]any); ok {
		pt = types.StrategicMergePatchType
		if o.strategy == "merge" {
			pt = types.MergePatchType
		}
		all := append(append([]Artifact{}, o.d.RequiredArtifacts...), o.d.AllArtifacts...)
		res.BoundArtifacts = bindArtifacts(m, o.t.namespace, o.d.Account, all)
		if err := unbound("requiredArtifacts", o.d.RequiredArtifacts, res.BoundArtifacts); err != nil {
			return Result{}, err
		}
	}
	// options.record (kubectl's --record): the change's cause in the
	// annotation kubectl rollout history shows, in the patch itself when
	// it is an object, else in a patch of its own after it.
	record := o.d.Options.Record.or(false)
	cause := fmt.Sprintf("kubesvc patchManifest %s --type=%s", o.d.ManifestName, o.strategy)
	if m, ok := o.body.(map[string]any); ok && record {
		meta, _ := m["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			m["metadata"] = meta
		}
		// A patch removing every annotation (null) keeps its meaning: the
		// cause is recorded after it.
		if a, set := meta["annotations"]; !set || a != nil {
			ann, _ := a.(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				meta["annotations"] = ann
			}
			ann[annotationChangeCause] = cause
			record = false
		}
	}
	body, err := json.Marshal(o.body)
	if err != nil {
		return Result{}, permanent{err}
	}
	out, err := e.patch(ctx, &o.t, pt, body)
	if err != nil {
		return Result{}, err
	}
	if record {
		// As kubectl --record: a cause that cannot be recorded is logged,
		// the patch applied stands.
		causePatch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotationChangeCause: cause}}})
		if recorded, err := e.patch(ctx, &o.t, types.MergePatchType, causePatch); err != nil {
			e.opts.Logger.Warn("patch applied, its change cause not recorded", "target", o.d.ManifestName, "err", err)
		} else {
			out = recorded
		}
	}
	res.addObject(o.t.gk(), out)
	return res, nil
}

// annotationChangeCause is where kubectl --record writes the command, and
// kubectl rollout history reads it.
const annotationChangeCause = "kubernetes.io/change-cause"

// optString reads a delete option given as string, boolean or number.
func optString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return fmt.Sprint(v), true
}
