package manifests

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/store"
)

// shortNames are kubectl's short names of built-in kinds (the API server's
// discovery has them; the cache does not keep them), to lower-case kinds.
// Clouddriver accepts the same aliases in "kind name" strings.
var shortNames = map[string]string{
	"cm": "configmap", "cj": "cronjob", "crd": "customresourcedefinition", "crds": "customresourcedefinition",
	"csr": "certificatesigningrequest", "deploy": "deployment", "ds": "daemonset", "ep": "endpoints",
	"ev": "event", "hpa": "horizontalpodautoscaler", "ing": "ingress", "limits": "limitrange",
	"netpol": "networkpolicy", "no": "node", "ns": "namespace", "pc": "priorityclass",
	"pdb": "poddisruptionbudget", "po": "pod", "pv": "persistentvolume", "pvc": "persistentvolumeclaim",
	"quota": "resourcequota", "rc": "replicationcontroller", "rs": "replicaset", "sa": "serviceaccount",
	"sc": "storageclass", "sts": "statefulset", "svc": "service",
}

// maxName is the longest name the cache keeps (a Kubernetes name's limit).
const maxName = 253

// fullName splits Clouddriver's "kind name" (one space between them). A
// name no cached object can have (over 253 bytes, or not printable ASCII)
// is refused here, rather than looked up for ever.
func fullName(s string) (kind, name string, err error) {
	if len(s) > 2*maxName+1 {
		return "", "", fmt.Errorf(`name: %d bytes, longer than any "KIND NAME" can be`, len(s))
	}
	kind, name, ok := strings.Cut(s, " ")
	if !ok || kind == "" || name == "" || strings.Contains(name, " ") {
		return "", "", fmt.Errorf(`name: %q is not "KIND NAME" (one space between them, e.g. "deployment my-app")`, s)
	}
	for what, v := range map[string]string{"kind": kind, "name": name} {
		if len(v) > maxName || !printable(v) {
			return "", "", fmt.Errorf("name: the %s %q is not one a cached object can have (printable ASCII, at most %d bytes)", what, v, maxName)
		}
	}
	return kind, name, nil
}

// printable tells whether s holds only printable ASCII characters.
func printable(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkLocation refuses a location no namespace can have: the object
// could never be found, and Orca would retry until its timeout.
func checkLocation(ns string) error {
	if ns == "" {
		return nil
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return fmt.Errorf("location: %q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
	}
	return nil
}

// emptySegments writes every empty segment of p as "_" ("///" holds two).
func emptySegments(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/_/")
	}
	return p
}

// notCachedError says that an account caches no kind of a name.
type notCachedError struct {
	account, kind string
	accountKnown  bool
	candidates    []string // kinds of other groups the name could mean
}

func (e *notCachedError) Error() string {
	switch {
	case !e.accountKnown:
		return fmt.Sprintf("account %q has nothing cached: it is unknown, or its agent has not streamed it yet", e.account)
	case len(e.candidates) > 0:
		return fmt.Sprintf("account %q caches %q in several API groups: name one, as %s", e.account, e.kind, strings.Join(e.candidates, " or "))
	}
	return fmt.Sprintf("account %q caches no kind %q (kinds are resolved among the account's cached kinds: filtered by kinds/omitKinds, or not served by its cluster?)", e.account, e.kind)
}

// EmptyLocations serves a request for an empty {location}
// ("/manifests/a//deployment%20x", as a client joining an empty namespace
// writes it) as one for "_", the placeholder of cluster-scoped objects,
// instead of letting the mux redirect it to a path that means something
// else (and escapes its name twice).
func EmptyLocations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (strings.HasPrefix(r.URL.Path, "/manifests/") || strings.HasPrefix(r.URL.Path, "/applications/")) && strings.Contains(r.URL.Path, "//") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = emptySegments(r.URL.Path)
			if r.URL.RawPath != "" {
				r2.URL.RawPath = emptySegments(r.URL.RawPath)
			}
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// resolveKind finds the cached kind (API group, kind, scope) that kind, as
// written in a "kind name" string, names among an account's streams: a
// kind or its plural in any case, a kubectl short name, Clouddriver's
// "Kind.group" for kinds of other groups than Kubernetes' own. Without a
// group, the core group wins, then Kubernetes' groups in name order, then
// the one other group that has the kind (several: an error naming them).
func resolveKind(account, kind string, streams []store.ResumePoint) (store.Resource, error) {
	k, group, withGroup := strings.Cut(kind, ".")
	lower := strings.ToLower(k)
	if long, ok := shortNames[lower]; ok && !withGroup {
		lower = long
	}
	var found []store.Resource
	for _, s := range streams {
		r := s.Stream.Resource
		if withGroup && r.Group != group || !withGroup && !ops.NativeGroup(r.Group) {
			continue
		}
		if strings.ToLower(r.Kind) != lower && r.Resource != lower {
			continue
		}
		if !slices.ContainsFunc(found, func(f store.Resource) bool { return f.Group == r.Group && f.Kind == r.Kind }) {
			found = append(found, r)
		}
	}
	if len(found) == 0 && !withGroup {
		// Not a Kubernetes kind: a custom resource's kind without its group
		// ("Widget" for Widget.example.com), if only one group has it.
		for _, s := range streams {
			r := s.Stream.Resource
			if (strings.ToLower(r.Kind) == lower || r.Resource == lower) && !slices.ContainsFunc(found, func(f store.Resource) bool { return f.Group == r.Group && f.Kind == r.Kind }) {
				found = append(found, r)
			}
		}
		if len(found) > 1 {
			var names []string
			for _, f := range found {
				names = append(names, kindName(f))
			}
			slices.Sort(names)
			return store.Resource{}, &notCachedError{account: account, kind: kind, accountKnown: true, candidates: names}
		}
	}
	if len(found) == 0 {
		return store.Resource{}, &notCachedError{account: account, kind: kind, accountKnown: len(streams) > 0}
	}
	slices.SortFunc(found, func(a, b store.Resource) int {
		switch {
		case a.Group == "" && b.Group != "":
			return -1
		case b.Group == "" && a.Group != "":
			return 1
		}
		return strings.Compare(a.Group, b.Group)
	})
	return found[0], nil
}

// kindName is a kind as Clouddriver spells it in "kind name" strings.
func kindName(r store.Resource) string {
	return ops.KindName(schema.GroupKind{Group: r.Group, Kind: r.Kind})
}
