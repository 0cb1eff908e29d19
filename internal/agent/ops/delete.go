package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// deleteDesc is Clouddriver's KubernetesDeleteManifestDescription.
type deleteDesc struct {
	targetDesc
	Kinds          []string        `json:"kinds"`
	LabelSelectors json.RawMessage `json:"labelSelectors"`
	Options        map[string]any  `json:"options"`
}

// selectorDesc is one of Clouddriver's KubernetesSelector.
type selectorDesc struct {
	Kind   string   `json:"kind"`
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

type deleteOp struct {
	d        deleteDesc
	point    *target   // manifestName given
	kinds    []*target // kinds + labelSelectors (name unset)
	selector labels.Selector
	opts     metav1.DeleteOptions
}

func parseDelete(payload []byte) (operation, error) {
	var d deleteDesc
	if err := decodeDescription(payload, &d); err != nil {
		return nil, err
	}
	o := &deleteOp{d: d}
	var err error
	if o.opts, err = deleteOptions(d.Options); err != nil {
		return nil, err
	}
	if d.ManifestName != "" {
		t, err := parseTarget(d.ManifestName, d.Location)
		if err != nil {
			return nil, err
		}
		o.point = &t
		return o, nil
	}
	if len(d.Kinds) == 0 {
		return nil, invalid("manifestName", "required, unless kinds and labelSelectors select what to delete")
	}
	if err := checkNamespace("location", d.Location); err != nil {
		return nil, err
	}
	for i, k := range d.Kinds {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, " /") {
			return nil, invalid(fmt.Sprintf("kinds[%d]", i), "invalid kind %q", k)
		}
		o.kinds = append(o.kinds, &target{kind: k, location: d.Location})
	}
	if o.selector, err = parseSelectors(d.LabelSelectors); err != nil {
		return nil, err
	}
	if o.selector == nil || o.selector.Empty() {
		// kubectl refuses a kind without names or a selector too: one
		// operation must not empty a namespace, or the cluster of a
		// cluster-scoped kind (namespaces...).
		return nil, invalid("labelSelectors", "required with kinds: give at least one label requirement (EQUALS, CONTAINS, EXISTS...); a selector of kind ANY alone would select every object, which is refused")
	}
	return o, nil
}

// deleteOptions follows Clouddriver: orphanDependents if given, else
// cascading (false orphans dependents), else propagationPolicy; the default
// is background deletion of dependents, as kubectl's. gracePeriodSeconds is
// passed on, 0 as 1 (as kubectl does without --force).
func deleteOptions(opts map[string]any) (metav1.DeleteOptions, error) {
	var do metav1.DeleteOptions
	policy := metav1.DeletePropagationBackground
	boolOpt := func(key string) (bool, bool, error) {
		s, ok := optString(opts[key])
		if !ok {
			return false, false, nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, false, invalid("options."+key, "must be a boolean, got %q", s)
		}
		return b, true, nil
	}
	if s, ok := optString(opts["propagationPolicy"]); ok {
		switch p := metav1.DeletionPropagation(s); p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
			policy = p
		default:
			return do, invalid("options.propagationPolicy", "must be Orphan, Background or Foreground, got %q", s)
		}
	}
	if b, ok, err := boolOpt("cascading"); err != nil {
		return do, err
	} else if ok && !b {
		policy = metav1.DeletePropagationOrphan
	}
	if b, ok, err := boolOpt("orphanDependents"); err != nil {
		return do, err
	} else if ok {
		policy = metav1.DeletePropagationBackground
		if b {
			policy = metav1.DeletePropagationOrphan
		}
	}
	do.PropagationPolicy = &policy
	if s, ok := optString(opts["gracePeriodSeconds"]); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return do, invalid("options.gracePeriodSeconds", "must be a non-negative integer, got %q", s)
		}
		// 0 would delete Pods from the API before their kubelet stopped
		// them (two Pods of one StatefulSet identity at once): 1 is as
		// fast and waits for it, as kubectl delete --grace-period=0 does
		// without --force.
		n = max(n, 1)
		do.GracePeriodSeconds = &n
	}
	return do, nil
}

// parseSelectors reads labelSelectors: Clouddriver's
// {"selectors": [{"kind": "EQUALS", "key": "app", "values": ["web"]}]}
// (kinds ANY, EQUALS, NOT_EQUALS, CONTAINS, NOT_CONTAINS, EXISTS,
// NOT_EXISTS), or a kubectl selector string "app=web,tier!=db". Nil means
// none given.
func parseSelectors(raw json.RawMessage) (labels.Selector, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonError("labelSelectors", err)
		}
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		sel, err := labels.Parse(s)
		if err != nil {
			return nil, invalid("labelSelectors", "%v", err)
		}
		return sel, nil
	}
	var list struct {
		Selectors []selectorDesc `json:"selectors"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, jsonError("labelSelectors", err)
	}
	if len(list.Selectors) == 0 {
		return nil, nil
	}
	sel := labels.NewSelector()
	ops := map[string]selection.Operator{"EQUALS": selection.Equals, "NOT_EQUALS": selection.NotEquals,
		"CONTAINS": selection.In, "NOT_CONTAINS": selection.NotIn, "EXISTS": selection.Exists, "NOT_EXISTS": selection.DoesNotExist}
	for i, s := range list.Selectors {
		f := fmt.Sprintf("labelSelectors.selectors[%d]", i)
		kind := strings.ToUpper(s.Kind)
		if kind == "ANY" {
			continue
		}
		op, ok := ops[kind]
		if !ok {
			return nil, invalid(f+".kind", "must be ANY, EQUALS, NOT_EQUALS, CONTAINS, NOT_CONTAINS, EXISTS or NOT_EXISTS, got %q", s.Kind)
		}
		vals := s.Values
		if op == selection.Exists || op == selection.DoesNotExist {
			vals = nil
		}
		r, err := labels.NewRequirement(s.Key, op, vals)
		if err != nil {
			return nil, invalid(f, "%v", err)
		}
		sel = sel.Add(*r)
	}
	return sel, nil
}

func (o *deleteOp) check(ctx context.Context, e *Executor) error {
	if o.point != nil {
		return o.point.resolve(ctx, e)
	}
	for i, t := range o.kinds {
		if t.mapping != nil {
			continue
		}
		m, err := e.mappingForName(t.kind, fmt.Sprintf("kinds[%d]", i))
		if err != nil {
			return err
		}
		t.mapping, t.namespace = m, e.namespaceFor(m, t.location)
	}
	return nil
}

// run deletes the named object, or every object of the kinds matching the
// selectors in the namespace. Objects already gone are not errors and are
// not reported. Deletion is not awaited (finalizers may keep objects a while).
func (o *deleteOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	var res Result
	if o.point != nil {
		return res, o.deleteOne(ctx, e, o.point, o.point.name, &res)
	}
	for _, t := range o.kinds {
		var names []string
		opts := metav1.ListOptions{LabelSelector: o.selector.String(), Limit: 500}
		for {
			var list *metav1.PartialObjectMetadataList
			err := e.do(ctx, "list "+KindName(t.gk()), func(ctx context.Context) (err error) {
				r := e.meta.Resource(t.mapping.Resource)
				if t.mapping.Scope.Name() == meta.RESTScopeNameNamespace {
					list, err = r.Namespace(t.namespace).List(ctx, opts)
				} else {
					list, err = r.List(ctx, opts)
				}
				return err
			})
			if err != nil {
				return Result{}, err
			}
			for _, it := range list.Items {
				names = append(names, it.Name)
			}
			if opts.Continue = list.Continue; opts.Continue == "" {
				break
			}
		}
		for _, n := range names {
			if err := o.deleteOne(ctx, e, t, n, &res); err != nil {
				return Result{}, err
			}
		}
	}
	return res, nil
}

func (o *deleteOp) deleteOne(ctx context.Context, e *Executor, t *target, name string, res *Result) error {
	gone := false
	err := e.do(ctx, "delete "+fullName(t.gk(), name), func(ctx context.Context) error {
		err := e.resource(t.mapping, t.namespace).Delete(ctx, name, o.opts)
		if apierrors.IsNotFound(err) {
			gone = true
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if !gone {
		res.addName(t.namespace, fullName(t.gk(), name))
		e.opts.Logger.Info("deleted object", "object", fullName(t.gk(), name), "namespace", t.namespace,
			"propagation", string(*o.opts.PropagationPolicy))
	}
	return nil
}
