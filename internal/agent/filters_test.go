package agent

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

func TestWantsKind(t *testing.T) {
	t.Parallel()
	type probe struct {
		kind, group string
		want        bool
	}
	cases := []struct {
		name   string
		acct   Account
		probes []probe
	}{
		{
			name: "no filters: everything",
			acct: Account{},
			probes: []probe{
				{"Pod", "", true}, {"Deployment", "apps", true}, {"Widget", "example.com", true},
			},
		},
		{
			name: "kinds: plain names match any group, case-insensitively",
			acct: Account{Kinds: []string{"deployment", "CONFIGMAP"}},
			probes: []probe{
				{"Deployment", "apps", true},
				{"Deployment", "example.com", true},
				{"ConfigMap", "", true},
				{"Pod", "", false},
				{"ReplicaSet", "apps", false},
			},
		},
		{
			name: "kinds: kind.group names one group, case-insensitively",
			acct: Account{Kinds: []string{"Deployment.Apps", "ingress.networking.k8s.io"}},
			probes: []probe{
				{"Deployment", "apps", true},
				{"Deployment", "example.com", false},
				{"Ingress", "networking.k8s.io", true},
				{"Ingress", "extensions", false},
				{"Ingress", "networking", false},
				{"Pod", "", false},
			},
		},
		{
			name: "omitKinds: plain and kind.group",
			acct: Account{OmitKinds: []string{"SECRET", "widget.example.com"}},
			probes: []probe{
				{"Secret", "", false},
				{"Secret", "example.com", false},
				{"Widget", "example.com", false},
				{"Widget", "other.example.com", true},
				{"ConfigMap", "", true},
			},
		},
		{
			name: "omitKinds wins over kinds",
			acct: Account{Kinds: []string{"deployment", "pod"}, OmitKinds: []string{"deployment.apps"}},
			probes: []probe{
				{"Deployment", "apps", false},
				{"Deployment", "example.com", true},
				{"Pod", "", true},
				{"Service", "", false},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.probes {
				if got := c.acct.wantsKind(p.kind, p.group); got != p.want {
					t.Errorf("kinds=%q omitKinds=%q: wantsKind(%q, %q) = %v, want %v", c.acct.Kinds, c.acct.OmitKinds, p.kind, p.group, got, p.want)
				}
			}
		})
	}
}

func TestWatchable(t *testing.T) {
	t.Parallel()
	lw := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	cases := []struct {
		gv   schema.GroupVersion
		r    metav1.APIResource
		want bool
	}{
		{schema.GroupVersion{Version: "v1"}, metav1.APIResource{Name: "pods", Verbs: lw}, true},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, metav1.APIResource{Name: "deployments", Verbs: lw}, true},
		// Subresources are never streams.
		{schema.GroupVersion{Version: "v1"}, metav1.APIResource{Name: "pods/status", Verbs: lw}, false},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, metav1.APIResource{Name: "deployments/scale", Verbs: lw}, false},
		// Both verbs are needed.
		{schema.GroupVersion{Version: "v1"}, metav1.APIResource{Name: "bindings", Verbs: []string{"create"}}, false},
		{schema.GroupVersion{Version: "v1"}, metav1.APIResource{Name: "componentstatuses", Verbs: []string{"get", "list"}}, false},
		{schema.GroupVersion{Group: "example.com", Version: "v1"}, metav1.APIResource{Name: "watchonly", Verbs: []string{"watch"}}, false},
		{schema.GroupVersion{Group: "example.com", Version: "v1"}, metav1.APIResource{Name: "noverbs"}, false},
		// Events are served twice; only the core copy is watched.
		{schema.GroupVersion{Version: "v1"}, metav1.APIResource{Name: "events", Verbs: lw}, true},
		{schema.GroupVersion{Group: "events.k8s.io", Version: "v1"}, metav1.APIResource{Name: "events", Verbs: lw}, false},
		{schema.GroupVersion{Group: "example.com", Version: "v1"}, metav1.APIResource{Name: "events", Verbs: lw}, true},
	}
	for _, c := range cases {
		if got := watchable(c.gv, c.r); got != c.want {
			t.Errorf("watchable(%s, %s verbs=%v) = %v, want %v", c.gv, c.r.Name, c.r.Verbs, got, c.want)
		}
	}
}

func streamKey(account, group, version, resource string, namespaced bool, namespace string) *kubesvcv1.StreamKey {
	return &kubesvcv1.StreamKey{
		Account:   account,
		Resource:  &kubesvcv1.Resource{Group: group, Version: version, Resource: resource, Namespaced: namespaced},
		Namespace: namespace,
	}
}

func TestNamespaceSelector(t *testing.T) {
	t.Parallel()
	pods := streamKey("a", "", "v1", "pods", true, "")
	widgets := streamKey("a", "example.com", "v1", "widgets", true, "")
	namespaces := streamKey("a", "", "v1", "namespaces", false, "")
	nodes := streamKey("a", "", "v1", "nodes", false, "")
	crds := streamKey("a", "apiextensions.k8s.io", "v1", "customresourcedefinitions", false, "")
	// A custom resource that happens to be called "namespaces" is not the
	// Namespace resource.
	fakeNamespaces := streamKey("a", "example.com", "v1", "namespaces", false, "")
	fakeNamespacedNamespaces := streamKey("a", "example.com", "v1", "namespaces", true, "")

	omit := []string{"kube-system", "secret-stuff"}
	cases := []struct {
		name string
		key  *kubesvcv1.StreamKey
		omit []string
		want string
	}{
		{"namespaced, nothing omitted", pods, nil, ""},
		{"namespace resource, nothing omitted", namespaces, []string{}, ""},
		{"namespaced core resource", pods, omit, "metadata.namespace!=kube-system,metadata.namespace!=secret-stuff"},
		{"namespaced custom resource", widgets, omit[:1], "metadata.namespace!=kube-system"},
		{"the Namespace resource itself", namespaces, omit, "metadata.name!=kube-system,metadata.name!=secret-stuff"},
		{"cluster-scoped core resource", nodes, omit, ""},
		{"cluster-scoped group resource", crds, omit, ""},
		{"cluster-scoped custom 'namespaces'", fakeNamespaces, omit, ""},
		{"namespaced custom 'namespaces'", fakeNamespacedNamespaces, omit[:1], "metadata.namespace!=kube-system"},
	}
	for _, c := range cases {
		if got := namespaceSelector(c.key, c.omit); got != c.want {
			t.Errorf("%s: namespaceSelector(%s, %q) = %q, want %q", c.name, streamID(c.key), c.omit, got, c.want)
		}
	}
}

func TestStreamID(t *testing.T) {
	t.Parallel()
	base := streamKey("acct", "apps", "v1", "deployments", true, "")
	// Everything that names a different stream gives a different id.
	distinct := []*kubesvcv1.StreamKey{
		base,
		streamKey("other", "apps", "v1", "deployments", true, ""),
		streamKey("acct", "extensions", "v1", "deployments", true, ""),
		streamKey("acct", "apps", "v1", "replicasets", true, ""),
		streamKey("acct", "apps", "v1", "deployments", true, "ns1"),
		streamKey("acct", "apps", "v1", "deployments", true, "ns2"),
		streamKey("acct", "", "v1", "deployments", true, ""),
		streamKey("acctapps", "", "v1", "deployments", true, ""),
	}
	seen := map[string]int{}
	for i, k := range distinct {
		id := streamID(k)
		if j, dup := seen[id]; dup {
			t.Errorf("keys %d and %d share the stream id %q", j, i, id)
		}
		seen[id] = i
	}
	// The version (and kind, scope) do not name a stream: a preferred
	// version change keeps the stream and its resume point.
	same := streamKey("acct", "apps", "v1beta2", "deployments", false, "")
	same.Resource.Kind = "Deployment"
	if streamID(same) != streamID(base) {
		t.Errorf("streamID depends on version/kind: %q vs %q", streamID(same), streamID(base))
	}
	// Nil-safe: a resume point without a stream must not panic.
	_ = streamID(nil)
	_ = streamID(&kubesvcv1.StreamKey{})
}

func TestApplicationOf(t *testing.T) {
	t.Parallel()
	const ann, lbl = "moniker.spinnaker.io/application", "app.kubernetes.io/name"
	cases := []struct {
		name                string
		annotations, labels map[string]string
		want                string
	}{
		{"neither", nil, nil, ""},
		{"unrelated metadata", map[string]string{"a": "b"}, map[string]string{"app": "x"}, ""},
		{"annotation", map[string]string{ann: "front"}, nil, "front"},
		{"label", nil, map[string]string{lbl: "back"}, "back"},
		{"annotation wins over label", map[string]string{ann: "front"}, map[string]string{lbl: "back"}, "front"},
		{"empty annotation falls back to label", map[string]string{ann: ""}, map[string]string{lbl: "back"}, "back"},
		{"label is not read from annotations", map[string]string{lbl: "back"}, nil, ""},
		{"annotation is not read from labels", nil, map[string]string{ann: "front"}, ""},
	}
	for _, c := range cases {
		if got := applicationOf(c.annotations, c.labels); got != c.want {
			t.Errorf("%s: applicationOf = %q, want %q", c.name, got, c.want)
		}
	}
}
