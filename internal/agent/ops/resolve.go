package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// refreshDiscovery drops the cached discovery so that kinds created since
// (CRDs) are found; at most once a second.
func (e *Executor) refreshDiscovery() {
	e.resetMu.Lock()
	defer e.resetMu.Unlock()
	if time.Since(e.lastReset) < time.Second {
		return
	}
	e.mapper.Reset()
	e.lastReset = time.Now()
}

// mappingFor returns the REST mapping of a manifest's apiVersion and kind.
// A kind the cluster does not serve is a ValidationError on field.
func (e *Executor) mappingFor(gvk schema.GroupVersionKind, field string) (*meta.RESTMapping, error) {
	m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		e.refreshDiscovery()
		m, err = e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if meta.IsNoMatchError(err) {
		return nil, &ValidationError{Field: field, Err: err,
			Message: fmt.Sprintf("unknown kind %q in apiVersion %q: the cluster does not serve it", gvk.Kind, gvk.GroupVersion())}
	}
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", gvk, err)
	}
	return m, nil
}

// mappingForName resolves a kind as written in "kind name" strings and
// kinds lists: "deployment", "Deployment", "deploy", "deployments",
// "replicaSet", "Rollout.argoproj.io".
func (e *Executor) mappingForName(kind, field string) (*meta.RESTMapping, error) {
	k, group, _ := strings.Cut(kind, ".")
	gvr := schema.GroupVersionResource{Group: group, Resource: strings.ToLower(k)}
	kinds := restmapper.NewShortcutExpander(e.mapper, e.disc, nil)
	gvk, err := kinds.KindFor(gvr)
	if meta.IsNoMatchError(err) {
		e.refreshDiscovery()
		gvk, err = kinds.KindFor(gvr)
	}
	if meta.IsNoMatchError(err) {
		return nil, &ValidationError{Field: field, Err: err,
			Message: fmt.Sprintf("unknown kind %q: the cluster does not serve it", kind)}
	}
	if err != nil {
		return nil, fmt.Errorf("discover kind %q: %w", kind, err)
	}
	return e.mappingFor(gvk, field)
}

// resource returns the dynamic client of mapping's resource in ns (ignored
// for cluster-scoped resources).
func (e *Executor) resource(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	r := e.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return sensitive(r.Namespace(ns), m.GroupVersionKind)
	}
	return sensitive(r, m.GroupVersionKind)
}

// namespaceFor is the namespace of an object or target of mapping m: ns,
// else the default namespace, for namespaced kinds; "" otherwise.
func (e *Executor) namespaceFor(m *meta.RESTMapping, ns string) string {
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return ""
	}
	if ns == "" {
		return e.opts.DefaultNamespace
	}
	return ns
}

// target is an existing object named by manifestName ("kind name") and
// location (namespace).
type target struct {
	kind, name, location string
	mapping              *meta.RESTMapping
	namespace            string
}

// parseTarget checks manifestName and location statically.
func parseTarget(manifestName, location string) (target, error) {
	if strings.TrimSpace(manifestName) == "" {
		return target{}, invalid("manifestName", `required ("KIND NAME", e.g. "deployment my-app")`)
	}
	parts := strings.Fields(manifestName)
	if len(parts) != 2 {
		return target{}, invalid("manifestName", `must be "KIND NAME", e.g. "deployment my-app", got %q`, manifestName)
	}
	if msgs := path.IsValidPathSegmentName(parts[1]); len(msgs) > 0 {
		return target{}, invalid("manifestName", "invalid name %q: %s", parts[1], strings.Join(msgs, "; "))
	}
	if err := checkNamespace("location", location); err != nil {
		return target{}, err
	}
	return target{kind: parts[0], name: parts[1], location: location}, nil
}

// resolve finds the target's kind in discovery and settles its namespace.
func (t *target) resolve(_ context.Context, e *Executor) error {
	if t.mapping != nil {
		return nil
	}
	m, err := e.mappingForName(t.kind, "manifestName")
	if err != nil {
		return err
	}
	t.mapping = m
	t.namespace = e.namespaceFor(m, t.location)
	return nil
}

func (t *target) gk() schema.GroupKind { return t.mapping.GroupVersionKind.GroupKind() }

func (t *target) String() string {
	s := fullName(t.gk(), t.name)
	if t.namespace != "" {
		s += " in namespace " + t.namespace
	}
	return s
}
