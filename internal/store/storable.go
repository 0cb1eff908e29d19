package store

import (
	"fmt"
	"unicode/utf8"
)

// maxKeyBytes is the longest key value (account, group, kind, resource,
// namespace, name) and short text (application, uid, resource version)
// every dialect stores: VARCHAR(253), ASCII for keys on MySQL.
const maxKeyBytes = 253

// Fit makes c storable on every backend, or says why it cannot be: an
// object's Application longer than the column is cut (at a character
// boundary), and a key longer than 253 bytes or not ASCII, or a uid or
// resource version longer than 253 bytes, is an error. Kubernetes allows
// such names for a few kinds (RBAC names are any path segment); the
// control plane leaves those objects out of the cache rather than fail
// the whole batch, which the agent would send again for ever.
func Fit(c *Change) error {
	k := c.Stream
	for _, f := range []struct{ what, v string }{
		{"account", k.Account}, {"group", k.Resource.Group}, {"kind", k.Resource.Kind},
		{"resource", k.Resource.Resource}, {"version", k.Resource.Version}, {"namespace", k.Namespace},
	} {
		if err := checkKey(f.what, f.v); err != nil {
			return err
		}
	}
	o := c.Object
	if o == nil {
		return nil
	}
	for _, f := range []struct{ what, v string }{{"namespace", o.Namespace}, {"name", o.Name}} {
		if err := checkKey(f.what, f.v); err != nil {
			return err
		}
	}
	if len(o.UID) > maxKeyBytes || len(o.ResourceVersion) > maxKeyBytes {
		return fmt.Errorf("object %s/%s: uid or resourceVersion longer than %d bytes", o.Namespace, o.Name, maxKeyBytes)
	}
	o.Application = cutText(o.Application)
	return nil
}

// cutText cuts s to the short text columns' size (maxKeyBytes), at a
// character boundary.
func cutText(s string) string {
	if len(s) <= maxKeyBytes {
		return s
	}
	cut := maxKeyBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func checkKey(what, v string) error {
	if len(v) > maxKeyBytes {
		return fmt.Errorf("%s %.40q...: longer than %d bytes", what, v, maxKeyBytes)
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return fmt.Errorf("%s %q: not ASCII", what, v)
		}
	}
	return nil
}
