package agent

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// appliedChanges returns the Applied changes of a successful operation
// result: each object it applied that this session caches (a stream of the
// account at the same group, version and kind covers its namespace), as
// the API server returned it, scrubbed. Sent just before the result, they
// let the control plane's cache reflect the operation without waiting for
// the watch event (which the control plane ignores if it arrived first,
// and which moves the stream's position as usual); not those whose watch
// event is queued already. It also returns those
// objects' identities and versions for the result's cached field; nil when
// the session cannot tell (the account is not assigned to it).
func (s *session) appliedChanges(account string, res *kubesvcv1.OperationResult) ([]*kubesvcv1.Change, *kubesvcv1.CachedObjects) {
	if !res.GetSuccess() || !s.assigned.has(account) {
		return nil, nil
	}
	acct, ok := s.agent.snapshot()[account]
	if !ok {
		return nil, nil
	}
	cached := &kubesvcv1.CachedObjects{}
	var result struct {
		Manifests []map[string]any `json:"manifests"`
	}
	if len(res.GetPayload()) == 0 || json.Unmarshal(res.GetPayload(), &result) != nil || len(result.Manifests) == 0 {
		return nil, cached
	}
	known := s.knownStreams(account)
	var out []*kubesvcv1.Change
	for _, m := range result.Manifests {
		u := &unstructured.Unstructured{Object: m}
		group, version, _ := strings.Cut(u.GetAPIVersion(), "/")
		if version == "" {
			group, version = "", group
		}
		ns := u.GetNamespace()
		if u.GetResourceVersion() == "" || slices.Contains(acct.OmitNamespaces, ns) {
			continue
		}
		for id, k := range known {
			if isSynthetic(k) {
				continue // built from configuration: nothing to wait for there
			}
			r := k.GetResource()
			if r.GetGroup() != group || r.GetKind() != u.GetKind() ||
				k.GetNamespace() != "" && k.GetNamespace() != ns || !r.GetNamespaced() && ns != "" {
				continue
			}
			// The stream caches it, in its own version: wait for it at
			// this resourceVersion (the same in every version), and send
			// it ahead when it is in the stream's version.
			cached.Objects = append(cached.Objects, &kubesvcv1.ObjectRef{Group: group, Kind: u.GetKind(),
				Namespace: ns, Name: u.GetName(), ResourceVersion: u.GetResourceVersion()})
			// Not when the watch event of this version (or a later one)
			// is queued already: the control plane would skip it.
			if r.GetVersion() != version || s.alreadyWatched(id, u.GetResourceVersion()) {
				break
			}
			if obj, err := wireObject(r, u, s.agent.scrubber); err == nil {
				out = append(out, &kubesvcv1.Change{Stream: k, Change: &kubesvcv1.Change_Applied{Applied: obj}})
			}
			break
		}
	}
	return out, cached
}

// sendApplied queues the Applied changes of res ahead of it and returns
// res as this session sends it: with the objects it caches.
func (s *session) sendApplied(ctx context.Context, account string, res *kubesvcv1.OperationResult) (*kubesvcv1.OperationResult, error) {
	changes, cached := s.appliedChanges(account, res)
	for _, c := range changes {
		if err := s.emit(ctx, c); err != nil {
			return nil, err
		}
	}
	if cached == nil {
		return res, nil
	}
	// A copy: the result is kept for resending, maybe on another session.
	return &kubesvcv1.OperationResult{Id: res.GetId(), Success: res.GetSuccess(), Error: res.GetError(),
		Payload: res.GetPayload(), Cached: cached}, nil
}
