package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CheckQuery returns an error naming the first query parameter of q (in
// sorted order) that is not one of allowed, listing those, or that is
// given more than once; nil when there is none.
func CheckQuery(q url.Values, allowed ...string) error {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return fmt.Errorf("unknown query parameter %q; this endpoint takes none", k)
			}
			return fmt.Errorf("unknown query parameter %q; allowed: %s", k, strings.Join(allowed, ", "))
		}
		if n := len(q[k]); n > 1 {
			return fmt.Errorf("query parameter %q given %d times", k, n)
		}
	}
	return nil
}

// Query wraps h: a request with a query parameter CheckQuery refuses gets
// a 400 saying why instead.
func Query(h http.HandlerFunc, allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := CheckQuery(r.URL.Query(), allowed...); err != nil {
			WriteError(w, http.StatusBadRequest, "%v", err)
			return
		}
		h(w, r)
	}
}
