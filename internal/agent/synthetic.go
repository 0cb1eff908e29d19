package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// Synthetic streams: an account with onlyNamespacedResources cannot list
// Namespaces or CustomResourceDefinitions (cluster-scoped), yet Spinnaker
// needs to know its namespaces and the custom kinds it may deploy. As the
// Armory agent does, such an account sends them "synthetic": one Namespace
// object per configured namespace, one CustomResourceDefinition per
// customResourceDefinitions entry, built from the configuration and API
// discovery instead of being listed or watched. They are streams like any
// other (SyncBegin, objects, SyncEnd), so the cache replaces them whole
// when they change.

// CRD is a custom resource kind to expose although its definition cannot be
// read (kubernetes.accounts[].customResourceDefinitions).
type CRD struct {
	Kind, Group string
	// Cluster: cluster-scoped; otherwise namespaced.
	Cluster bool
}

// The selector hash of a synthetic stream is kubesvcv1.SyntheticSelectorPrefix
// and a fingerprint of its configuration, so a change restarts the stream.
const syntheticPrefix = kubesvcv1.SyntheticSelectorPrefix

var (
	syntheticNamespaceResource = &kubesvcv1.Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"}
	syntheticCRDResource       = &kubesvcv1.Resource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"}
)

// syntheticStreams returns the synthetic stream keys of a.
func syntheticStreams(a Account) []*kubesvcv1.StreamKey {
	if !a.OnlyNamespacedResources {
		return nil
	}
	var out []*kubesvcv1.StreamKey
	// Not filtered by kinds: they describe the account (its namespaces, the
	// kinds it may deploy) rather than being watched; omitKinds can drop them.
	if len(a.Namespaces) > 0 && !a.omitsKind("Namespace", "") {
		names := slices.Sorted(slices.Values(a.Namespaces))
		out = append(out, &kubesvcv1.StreamKey{Account: a.Name, Resource: syntheticNamespaceResource,
			SelectorHash: syntheticPrefix + selectorHash(strings.Join(names, ","))})
	}
	if len(a.CRDs) > 0 && !a.omitsKind("CustomResourceDefinition", "apiextensions.k8s.io") {
		b, _ := json.Marshal(a.CRDs)
		out = append(out, &kubesvcv1.StreamKey{Account: a.Name, Resource: syntheticCRDResource,
			SelectorHash: syntheticPrefix + selectorHash(string(b))})
	}
	return out
}

func isSynthetic(k *kubesvcv1.StreamKey) bool {
	return kubesvcv1.IsSyntheticSelector(k.GetSelectorHash())
}

// syntheticNamespaces are the account's namespaces as Namespace objects.
func syntheticNamespaces(a Account) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, ns := range slices.Sorted(slices.Values(a.Namespaces)) {
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": ns, "annotations": map[string]any{syntheticAnnotation: "true"}},
		}})
	}
	return out
}

// syntheticAnnotation marks objects the agent made up rather than read.
const syntheticAnnotation = "kubesvc.io/synthetic"

// syntheticCRDs describes the account's declared custom kinds as
// CustomResourceDefinitions, with the plural and versions discovery
// reports. A kind discovery does not serve (its CRD is not installed) is
// left out and named in missing.
func syntheticCRDs(dc discovery.DiscoveryInterface, a Account) (out []*unstructured.Unstructured, missing []string, _ error) {
	groups, err := dc.ServerGroups()
	if err != nil {
		return nil, nil, fmt.Errorf("discover API groups: %w", err)
	}
	for _, crd := range a.CRDs {
		var versions []any
		var plural, singular string
		var namespaced bool
		kind, group := crd.Kind, crd.Group
		for _, g := range groups.Groups {
			if !strings.EqualFold(g.Name, crd.Group) {
				continue
			}
			for _, v := range g.Versions {
				list, err := dc.ServerResourcesForGroupVersion(v.GroupVersion)
				if err != nil {
					return nil, nil, fmt.Errorf("discover %s: %w", v.GroupVersion, err)
				}
				for _, r := range list.APIResources {
					if strings.EqualFold(r.Kind, crd.Kind) && !strings.Contains(r.Name, "/") {
						kind, group = r.Kind, g.Name
						plural, singular, namespaced = r.Name, r.SingularName, r.Namespaced
						versions = append(versions, map[string]any{"name": v.Version, "served": true, "storage": v.Version == g.PreferredVersion.Version})
					}
				}
			}
		}
		if plural == "" {
			missing = append(missing, crd.Kind+"."+crd.Group)
			continue
		}
		// Discovery knows the scope; the configured one only names it.
		scope := "Cluster"
		if namespaced {
			scope = "Namespaced"
		}
		names := map[string]any{"kind": kind, "plural": plural}
		if singular != "" {
			names["singular"] = singular
		}
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": plural + "." + group, "annotations": map[string]any{syntheticAnnotation: "true"}},
			"spec":     map[string]any{"group": group, "names": names, "scope": scope, "versions": versions},
		}})
	}
	return out, missing, nil
}

// syntheticRunner sends a synthetic stream: the objects build returns, as
// one list, again whenever they change.
type syntheticRunner struct {
	*streamRunner
	build func(context.Context) ([]*unstructured.Unstructured, error)
	every time.Duration // 0: build once, and when refresh says
	// refresh asks for a build now (after a rediscovery); nil: never.
	refresh <-chan struct{}
}

func (r *syntheticRunner) run(ctx context.Context) error {
	var last []byte
	failures := 0
	for ctx.Err() == nil {
		objs, err := r.build(ctx)
		if err == nil {
			var fp []byte
			if fp, err = json.Marshal(objs); err == nil && string(fp) != string(last) {
				if err = r.send(ctx, objs); err == nil {
					last = fp
				}
			}
		}
		wait := r.every
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			r.log.Warn("synthetic stream failed", "err", err, "attempt", failures)
			r.setReport(err) // shown in the account's status until it succeeds
			wait = retryDelay(failures)
		} else {
			failures = 0
			r.setReport(nil)
		}
		if !r.pause(ctx, wait) {
			return nil
		}
	}
	return nil
}

// pause waits d (0: for ever) or until a refresh is asked for; false when
// ctx ended.
func (r *syntheticRunner) pause(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-timeout:
	case <-r.refresh:
	}
	return true
}

// send replaces the stream's contents with objs.
func (r *syntheticRunner) send(ctx context.Context, objs []*unstructured.Unstructured) error {
	if err := r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_SyncBegin{SyncBegin: &kubesvcv1.SyncBegin{}}}); err != nil {
		return err
	}
	for _, u := range objs {
		obj, err := r.object(u)
		if err != nil {
			return err
		}
		if err := r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_Listed{Listed: obj}}); err != nil {
			return err
		}
	}
	return r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_SyncEnd{SyncEnd: &kubesvcv1.SyncEnd{}}})
}
