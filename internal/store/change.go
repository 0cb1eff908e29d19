package store

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalidChange is returned (wrapped) by ApplyChanges for a change that
// cannot be applied whatever the database state: retrying will not help.
var ErrInvalidChange = errors.New("invalid change")

// validateChange checks what ApplyChanges can check without the database.
func validateChange(c *Change) error {
	k := c.Stream
	if k.Account == "" || k.Resource.Resource == "" || k.Resource.Kind == "" {
		return fmt.Errorf("%w: %s: stream %s lacks account, resource or kind", ErrInvalidChange, changeName(c.Type), streamName(k))
	}
	switch c.Type {
	case Listed, Upserted, Deleted, Applied:
		if c.Object == nil {
			return fmt.Errorf("%w: %s for stream %s without an object", ErrInvalidChange, changeName(c.Type), streamName(k))
		}
		if _, err := objectKeyOf(c); err != nil {
			return err
		}
	case SyncBegin, SyncEnd, Bookmark, StreamRemoved:
	default:
		return fmt.Errorf("%w: unknown change type %d", ErrInvalidChange, c.Type)
	}
	return nil
}

// objectKeyOf returns the key of c.Object. The stream decides the account,
// group and kind (the object may leave them empty but not contradict them)
// and, for a namespace stream, the namespace.
func objectKeyOf(c *Change) (ObjectKey, error) {
	o, st := c.Object, c.Stream
	key := ObjectKey{
		Account:   st.Account,
		Group:     st.Resource.Group,
		Kind:      st.Resource.Kind,
		Namespace: o.Namespace,
		Name:      o.Name,
	}
	if key.Namespace == "" {
		key.Namespace = st.Namespace
	}
	switch {
	case o.Name == "":
		return key, fmt.Errorf("%w: %s object without a name in stream %s", ErrInvalidChange, changeName(c.Type), streamName(st))
	case o.Account != "" && o.Account != key.Account,
		o.Group != "" && o.Group != key.Group,
		o.Kind != "" && o.Kind != key.Kind,
		st.Namespace != "" && key.Namespace != st.Namespace:
		return key, fmt.Errorf("%w: object %s/%s/%s %s/%s does not belong to stream %s", ErrInvalidChange,
			o.Account, o.Group, o.Kind, o.Namespace, o.Name, streamName(st))
	}
	return key, nil
}

// encodeLabels returns labels as a JSON object ("{}" for none).
func encodeLabels(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", fmt.Errorf("encode labels: %w", err)
	}
	return string(b), nil
}

func changeName(t ChangeType) string {
	switch t {
	case Listed:
		return "Listed"
	case Upserted:
		return "Upserted"
	case Deleted:
		return "Deleted"
	case SyncBegin:
		return "SyncBegin"
	case SyncEnd:
		return "SyncEnd"
	case Bookmark:
		return "Bookmark"
	case StreamRemoved:
		return "StreamRemoved"
	case Applied:
		return "Applied"
	}
	return fmt.Sprintf("ChangeType(%d)", int(t))
}

func streamName(k StreamKey) string {
	r := k.Resource.Resource
	if k.Resource.Group != "" {
		r += "." + k.Resource.Group
	}
	if k.Namespace != "" {
		r += " in " + k.Namespace
	}
	return k.Account + "/" + r
}
