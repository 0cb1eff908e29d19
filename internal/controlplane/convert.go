package controlplane

import (
	"errors"
	"fmt"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/store"
)

func streamFromProto(k *kubesvcv1.StreamKey) (store.StreamKey, error) {
	r := k.GetResource()
	switch {
	case k.GetAccount() == "":
		return store.StreamKey{}, errors.New("stream.account: required")
	case r.GetVersion() == "" || r.GetResource() == "" || r.GetKind() == "":
		return store.StreamKey{}, errors.New("stream.resource: version, resource and kind are required")
	}
	return store.StreamKey{
		Account: k.GetAccount(),
		Resource: store.Resource{
			Group: r.GetGroup(), Version: r.GetVersion(), Resource: r.GetResource(),
			Kind: r.GetKind(), Namespaced: r.GetNamespaced(),
		},
		Namespace:    k.GetNamespace(),
		SelectorHash: k.GetSelectorHash(),
	}, nil
}

func streamToProto(k store.StreamKey) *kubesvcv1.StreamKey {
	return &kubesvcv1.StreamKey{
		Account: k.Account,
		Resource: &kubesvcv1.Resource{
			Group: k.Resource.Group, Version: k.Resource.Version, Resource: k.Resource.Resource,
			Kind: k.Resource.Kind, Namespaced: k.Resource.Namespaced,
		},
		Namespace:    k.Namespace,
		SelectorHash: k.SelectorHash,
	}
}

func objectFromProto(k store.StreamKey, o *kubesvcv1.Object) (*store.Object, error) {
	if o.GetName() == "" {
		return nil, errors.New("object.name: required")
	}
	return &store.Object{
		ObjectKey: store.ObjectKey{
			Account: k.Account, Group: k.Resource.Group, Kind: k.Resource.Kind,
			Namespace: o.GetNamespace(), Name: o.GetName(),
		},
		Version:         k.Resource.Version,
		Resource:        k.Resource.Resource,
		UID:             o.GetUid(),
		ResourceVersion: o.GetResourceVersion(),
		Application:     o.GetApplication(),
		Labels:          o.GetLabels(),
		JSON:            o.GetJson(),
	}, nil
}

func changesFromProto(in []*kubesvcv1.Change) ([]store.Change, error) {
	out := make([]store.Change, 0, len(in))
	for i, c := range in {
		k, err := streamFromProto(c.GetStream())
		if err != nil {
			return nil, fmt.Errorf("changes[%d].%w", i, err)
		}
		sc := store.Change{Stream: k}
		var obj *kubesvcv1.Object
		switch ch := c.GetChange().(type) {
		case *kubesvcv1.Change_Listed:
			sc.Type, obj = store.Listed, ch.Listed
		case *kubesvcv1.Change_Upserted:
			sc.Type, obj = store.Upserted, ch.Upserted
		case *kubesvcv1.Change_Deleted:
			sc.Type, obj = store.Deleted, ch.Deleted
			sc.ResourceVersion = ch.Deleted.GetResourceVersion()
		case *kubesvcv1.Change_SyncBegin:
			sc.Type = store.SyncBegin
		case *kubesvcv1.Change_SyncEnd:
			sc.Type, sc.ResourceVersion = store.SyncEnd, ch.SyncEnd.GetResourceVersion()
		case *kubesvcv1.Change_Bookmark:
			sc.Type, sc.ResourceVersion = store.Bookmark, ch.Bookmark.GetResourceVersion()
		case *kubesvcv1.Change_StreamRemoved:
			sc.Type = store.StreamRemoved
		case *kubesvcv1.Change_Applied:
			sc.Type, obj = store.Applied, ch.Applied
		default:
			return nil, fmt.Errorf("changes[%d]: empty change", i)
		}
		if obj != nil {
			if sc.Object, err = objectFromProto(k, obj); err != nil {
				return nil, fmt.Errorf("changes[%d].%w", i, err)
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

func resumePointsToProto(points []store.ResumePoint) []*kubesvcv1.ResumePoint {
	out := make([]*kubesvcv1.ResumePoint, 0, len(points))
	for _, p := range points {
		out = append(out, &kubesvcv1.ResumePoint{
			Stream:          streamToProto(p.Stream),
			ResourceVersion: p.ResourceVersion,
			UpdatedAtMs:     p.UpdatedAt.UnixMilli(),
		})
	}
	return out
}
