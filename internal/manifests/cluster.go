package manifests

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/store"
)

// events returns the cached core Events about o, oldest first (by last,
// then first timestamp, then event time), as Clouddriver lists them, among
// those named as Kubernetes' event recorders name them. An account that
// does not cache Events has none.
func (h *Handler) events(ctx context.Context, o store.Object) ([]json.RawMessage, error) {
	// Event recorders name an event "OBJECT.TIMESTAMP": read only those.
	list, err := h.cache.ListObjects(ctx, store.Query{Account: o.Account, Kind: "Event", CoreGroup: true, Namespace: o.Namespace, NamePrefix: o.Name + "."})
	if err != nil {
		return nil, fmt.Errorf("list the cached Events of namespace %s: %w", o.Namespace, err)
	}
	type event struct {
		raw json.RawMessage
		at  string
	}
	var evs []event
	for _, e := range list {
		var ev struct {
			InvolvedObject struct {
				Kind, Name, UID string
			} `json:"involvedObject"`
			LastTimestamp, FirstTimestamp, EventTime string
		}
		if json.Unmarshal(e.JSON, &ev) != nil {
			continue
		}
		io := ev.InvolvedObject
		if io.Kind != o.Kind || io.Name != o.Name || io.UID != "" && o.UID != "" && io.UID != o.UID {
			continue
		}
		at := cmp.Or(ev.LastTimestamp, ev.FirstTimestamp, ev.EventTime, "n/a")
		evs = append(evs, event{raw: e.JSON, at: at})
	}
	slices.SortStableFunc(evs, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	out := make([]json.RawMessage, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.raw)
	}
	return out, nil
}

// clusterMembers are the cached objects of the request's kind in its
// location that belong to Spinnaker cluster {cluster} of application {app}
// (moniker annotations), or nil after answering an error.
func (h *Handler) clusterMembers(w http.ResponseWriter, r *http.Request) (store.Resource, []store.Object, []meta, bool) {
	account, loc, app, cluster := r.PathValue("account"), location(r), r.PathValue("app"), r.PathValue("cluster")
	res, ok := h.resolve(w, r, account, r.PathValue("kind"))
	if !ok {
		return res, nil, nil, false
	}
	q := store.Query{Account: account, Group: res.Group, CoreGroup: res.Group == "", Kind: res.Kind, Application: app}
	if err := checkLocation(loc); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return res, nil, nil, false
	}
	if res.Namespaced {
		if loc == "" {
			httpapi.WriteError(w, http.StatusBadRequest, "location: required for %s, a namespaced kind", kindName(res))
			return res, nil, nil, false
		}
		q.Namespace = loc
	}
	list, err := h.cache.ListObjects(r.Context(), q)
	if err != nil {
		h.fail(w, r, "list cached objects", err)
		return res, nil, nil, false
	}
	var objs []store.Object
	var mds []meta
	for _, o := range list {
		var md meta
		if json.Unmarshal(o.JSON, &md) != nil {
			continue
		}
		ann := md.Metadata.Annotations
		if ann[ops.AnnotationMonikerCluster] != cluster || ann[ops.AnnotationMonikerApplication] != app {
			continue
		}
		objs, mds = append(objs, o), append(mds, md)
	}
	return res, objs, mds, true
}

func coordinatesOf(res store.Resource, o store.Object) coordinates {
	return coordinates{Kind: kindName(res), Namespace: o.Namespace, Name: o.Name}
}

// getCluster answers the coordinates of a cluster's objects of a kind.
func (h *Handler) getCluster(w http.ResponseWriter, r *http.Request) {
	res, objs, _, ok := h.clusterMembers(w, r)
	if !ok {
		return
	}
	out := make([]coordinates, 0, len(objs))
	for _, o := range objs {
		out = append(out, coordinatesOf(res, o))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// criteria are Clouddriver's dynamic target selections.
var criteria = map[string]struct {
	bySize bool
	pick   func(n int) int // index into the ascending order
}{
	"oldest":        {pick: func(int) int { return 0 }},
	"newest":        {pick: func(n int) int { return n - 1 }},
	"second_newest": {pick: func(n int) int { return n - 2 }},
	"smallest":      {bySize: true, pick: func(int) int { return 0 }},
	"largest":       {bySize: true, pick: func(n int) int { return n - 1 }},
}

// getDynamic answers one of a cluster's objects: by age (creation time) or
// size (spec.replicas, none counting as -1), as Clouddriver picks a
// dynamic target.
func (h *Handler) getDynamic(w http.ResponseWriter, r *http.Request) {
	c, known := criteria[r.PathValue("criteria")]
	if !known {
		httpapi.WriteError(w, http.StatusBadRequest, "criteria: %q is not oldest, newest, second_newest, largest or smallest", r.PathValue("criteria"))
		return
	}
	res, objs, mds, ok := h.clusterMembers(w, r)
	if !ok {
		return
	}
	idx := make([]int, len(objs))
	for i := range idx {
		idx[i] = i
	}
	size := func(i int) int64 { return mds[i].replicas() }
	slices.SortStableFunc(idx, func(a, b int) int {
		if c.bySize {
			return cmp.Or(cmp.Compare(size(a), size(b)), cmp.Compare(objs[a].Name, objs[b].Name))
		}
		return cmp.Or(cmp.Compare(mds[a].Metadata.CreationTimestamp, mds[b].Metadata.CreationTimestamp), cmp.Compare(objs[a].Name, objs[b].Name))
	})
	i := c.pick(len(idx))
	if i < 0 || i >= len(idx) {
		httpapi.WriteError(w, http.StatusNotFound, "%s: cluster %q of application %q has %d cached %s objects%s", r.PathValue("criteria"),
			r.PathValue("cluster"), r.PathValue("app"), len(idx), kindName(res), inNamespace(res, location(r)))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, coordinatesOf(res, objs[idx[i]]))
}

func inNamespace(res store.Resource, ns string) string {
	if !res.Namespaced {
		return ""
	}
	return fmt.Sprintf(" in namespace %q", ns)
}
