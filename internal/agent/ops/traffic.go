package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// parseLoadBalancer parses "service NAME", the only kind of load balancer
// Clouddriver manages (CanLoadBalance).
func parseLoadBalancer(field, s string) (string, error) {
	parts := strings.Fields(s)
	if len(parts) != 2 {
		return "", invalid(field, `load balancers are written "service NAME", got %q`, s)
	}
	switch strings.ToLower(parts[0]) {
	case "service", "services", "svc":
		return parts[1], nil
	}
	return "", invalid(field, "load balancer %q: only Services can be load balancers", s)
}

// loadBalancersOf reads the traffic.spinnaker.io/load-balancers annotation,
// a JSON list of "service NAME".
func loadBalancersOf(ann map[string]string) ([]string, error) {
	v, ok := ann[AnnotationLoadBalancers]
	if !ok || v == "" {
		return nil, nil
	}
	var lbs []string
	if err := json.Unmarshal([]byte(v), &lbs); err != nil {
		return nil, fmt.Errorf("annotation %s must be a JSON list of strings, got %q", AnnotationLoadBalancers, v)
	}
	return lbs, nil
}

// setTraffic records the deploy's services in the load-balancers
// annotation; an annotation already naming others is an error.
func setTraffic(obj *unstructured.Unstructured, services []string) error {
	if len(services) == 0 {
		return nil
	}
	ann := obj.GetAnnotations()
	if _, ok := ann[AnnotationLoadBalancers]; ok {
		cur, err := loadBalancersOf(ann)
		if err != nil {
			return err
		}
		if !slices.Equal(cur, services) {
			return fmt.Errorf("manifest already has %s annotation set to %v; failed attempting to set it to %v", AnnotationLoadBalancers, cur, services)
		}
		return nil
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationLoadBalancers] = marshalAnnotation(services)
	obj.SetAnnotations(ann)
	return nil
}

// attachForDeploy adds the selectors of the workload's load balancers to
// its pod template labels before it is deployed (Clouddriver's
// ServiceHandler.attach), so its pods receive the Services' traffic.
func (e *Executor) attachForDeploy(ctx context.Context, it *manifest, items []*manifest) error {
	field := joinField(it.field, "metadata.annotations")
	lbs, err := loadBalancersOf(it.obj.GetAnnotations())
	if err != nil {
		return invalid(field, "%v", err)
	}
	ns := it.obj.GetNamespace()
	for _, lb := range lbs {
		name, err := parseLoadBalancer(field, lb)
		if err != nil {
			return err
		}
		sel, err := e.serviceSelector(ctx, ns, name, items)
		if err != nil {
			return err
		}
		if len(sel) == 0 {
			return invalid(field, "service %s must have a non-empty selector in order to be attached to a workload", name)
		}
		labels := podTemplate(it.obj.Object)
		if labels != nil {
			labels = stringMapAt(labels, true, "metadata", "labels")
		} else {
			labels = stringMapAt(it.obj.Object, true, "metadata", "labels")
		}
		for k := range sel {
			if _, ok := labels[k]; ok {
				return invalid(field, "service %s selector must have no label keys in common with the workload, both have %q", name, k)
			}
		}
		for k, v := range sel {
			labels[k] = v
		}
	}
	return nil
}

// serviceSelector returns a Service's selector, from the request's
// manifests if it is among them, else from the cluster.
func (e *Executor) serviceSelector(ctx context.Context, ns, name string, items []*manifest) (map[string]string, error) {
	for _, m := range items {
		if m.obj.GetKind() == "Service" && m.obj.GetAPIVersion() == "v1" && m.obj.GetName() == name && m.obj.GetNamespace() == ns {
			sel, _, _ := unstructured.NestedStringMap(m.obj.Object, "spec", "selector")
			return sel, nil
		}
	}
	var sel map[string]string
	err := e.do(ctx, "get service "+name, func(ctx context.Context) error {
		svc, err := e.kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sel = svc.Spec.Selector
		return nil
	})
	if apierrors.IsNotFound(err) {
		return nil, &ValidationError{Field: "services", Err: err, Message: fmt.Sprintf("load balancer service %s does not exist in namespace %s", name, ns)}
	}
	return sel, err
}

// trafficDesc is Clouddriver's KubernetesEnableDisableManifestDescription.
type trafficDesc struct {
	Account       string   `json:"account"`
	ManifestName  string   `json:"manifestName"`
	Location      string   `json:"location"`
	LoadBalancers []string `json:"loadBalancers"`
}

type trafficOp struct {
	enable bool
	d      trafficDesc
	t      target
}

func parseTraffic(enable bool) func([]byte) (operation, error) {
	return func(payload []byte) (operation, error) {
		var d trafficDesc
		if err := decodeDescription(payload, &d); err != nil {
			return nil, err
		}
		t, err := parseTarget(d.ManifestName, d.Location)
		if err != nil {
			return nil, err
		}
		for i, lb := range d.LoadBalancers {
			if _, err := parseLoadBalancer(fmt.Sprintf("loadBalancers[%d]", i), lb); err != nil {
				return nil, err
			}
		}
		return &trafficOp{enable: enable, d: d, t: t}, nil
	}
}

func (o *trafficOp) check(ctx context.Context, e *Executor) error { return o.t.resolve(ctx, e) }

// run enables or disables traffic to a workload the way Clouddriver does:
// the Services' selectors stay as they are; the selector labels of each
// Service (from loadBalancers, else the workload's
// traffic.spinnaker.io/load-balancers annotation) are added to (enable) or
// removed from (disable) the workload's pod template labels (its own labels
// if it has no template), then the same JSON patch is made to every Pod the
// workload controls. A disabled workload's pods stop matching the Services.
func (o *trafficOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	ri := e.resource(o.t.mapping, o.t.namespace)
	var tgt *unstructured.Unstructured
	err := e.do(ctx, "get "+o.t.String(), func(ctx context.Context) (err error) {
		tgt, err = ri.Get(ctx, o.t.name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return Result{}, err
	}
	lbs := o.d.LoadBalancers
	if len(lbs) == 0 {
		if lbs, err = loadBalancersOf(tgt.GetAnnotations()); err != nil {
			return Result{}, invalid("manifestName", "%s: %v", o.t.String(), err)
		}
	}
	var pods []*unstructured.Unstructured
	if len(lbs) > 0 {
		if pods, err = e.controlledPods(ctx, o.t.namespace, tgt.GetUID()); err != nil {
			return Result{}, err
		}
	}
	var res Result
	for _, lb := range lbs {
		name, err := parseLoadBalancer("loadBalancers", lb)
		if err != nil {
			return Result{}, err
		}
		sel, err := e.serviceSelector(ctx, o.t.namespace, name, nil)
		if err != nil {
			return Result{}, err
		}
		if tgt, err = e.patchLabels(ctx, o.t.mapping.Resource.Resource, ri, tgt, sel, o.enable); err != nil {
			return Result{}, err
		}
		for i, p := range pods {
			if pods[i], err = e.patchLabels(ctx, "pods", e.dyn.Resource(podsGVR).Namespace(o.t.namespace), p, sel, o.enable); err != nil {
				return Result{}, err
			}
			res.addName(o.t.namespace, "pod "+p.GetName())
		}
	}
	res.addObject(o.t.gk(), tgt)
	return res, nil
}

// patchLabels adds (attach) or removes (detach) the selector's labels on
// obj's pod template, or on obj itself without a template, by JSON patch.
func (e *Executor) patchLabels(ctx context.Context, what string, ri interface {
	Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*unstructured.Unstructured, error)
}, obj *unstructured.Unstructured, sel map[string]string, attach bool) (*unstructured.Unstructured, error) {
	prefix, labels := "/metadata/labels", stringMapAt(obj.Object, false, "metadata", "labels")
	if t := podTemplate(obj.Object); t != nil {
		prefix, labels = "/spec/template/metadata/labels", stringMapAt(t, false, "metadata", "labels")
	}
	var ops []map[string]any
	keys := slices.Sorted(maps.Keys(sel))
	switch {
	case attach && labels == nil:
		ops = append(ops, map[string]any{"op": "add", "path": prefix, "value": sel})
	case attach:
		for _, k := range keys {
			op := "add"
			if _, ok := labels[k]; ok {
				op = "replace"
			}
			ops = append(ops, map[string]any{"op": op, "path": prefix + "/" + escapePointer(k), "value": sel[k]})
		}
	default:
		for _, k := range keys {
			if _, ok := labels[k]; ok {
				ops = append(ops, map[string]any{"op": "remove", "path": prefix + "/" + escapePointer(k)})
			}
		}
	}
	if len(ops) == 0 {
		return obj, nil
	}
	patch, _ := json.Marshal(ops)
	var out *unstructured.Unstructured
	// Once: a "remove" applied, then retried, fails and leaves the object
	// half-changed.
	err := e.doOnce(ctx, "patch labels of "+what+" "+obj.GetName(), func(ctx context.Context) (err error) {
		out, err = ri.Patch(ctx, obj.GetName(), types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: e.opts.FieldManager})
		return err
	})
	return out, err
}

// escapePointer escapes a JSON pointer segment (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
