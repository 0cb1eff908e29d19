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
// and which moves the stream's position as usual).
func (s *session) appliedChanges(account string, res *kubesvcv1.OperationResult) []*kubesvcv1.Change {
	if !res.GetSuccess() || len(res.GetPayload()) == 0 || !s.assigned.has(account) {
		return nil
	}
	acct, ok := s.agent.snapshot()[account]
	if !ok {
		return nil
	}
	var result struct {
		Manifests []map[string]any `json:"manifests"`
	}
	if err := json.Unmarshal(res.GetPayload(), &result); err != nil || len(result.Manifests) == 0 {
		return nil
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
		for _, k := range known {
			r := k.GetResource()
			if r.GetGroup() != group || r.GetVersion() != version || r.GetKind() != u.GetKind() ||
				k.GetNamespace() != "" && k.GetNamespace() != ns || !r.GetNamespaced() && ns != "" {
				continue
			}
			obj, err := wireObject(r, u, s.agent.scrubber)
			if err != nil {
				break
			}
			out = append(out, &kubesvcv1.Change{Stream: k, Change: &kubesvcv1.Change_Applied{Applied: obj}})
			break
		}
	}
	return out
}

// sendApplied queues the Applied changes of res ahead of it.
func (s *session) sendApplied(ctx context.Context, account string, res *kubesvcv1.OperationResult) error {
	for _, c := range s.appliedChanges(account, res) {
		if err := s.emit(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
