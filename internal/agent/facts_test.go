package agent

import (
	"testing"

	"k8s.io/client-go/rest"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

func key(kind, group string) *kubesvcv1.StreamKey {
	return &kubesvcv1.StreamKey{Resource: &kubesvcv1.Resource{Kind: kind, Group: group}}
}

// An account naming its kinds needs no CRD watch once all are found.
func TestKindsAllFound(t *testing.T) {
	keys := []*kubesvcv1.StreamKey{key("ConfigMap", ""), key("Deployment", "apps"), key("Widget", "example.com")}
	for _, tc := range []struct {
		kinds []string
		want  bool
	}{
		{nil, false},
		{[]string{"configMap"}, true},
		{[]string{"configmap", "deployment.apps", "widget.example.com"}, true},
		{[]string{"configMap", "gadget"}, false},
		{[]string{"deployment.extensions"}, false},
	} {
		if got := (Account{Kinds: tc.kinds}).kindsAllFound(keys); got != tc.want {
			t.Errorf("kinds %v: %v, want %v", tc.kinds, got, tc.want)
		}
	}
}

// Facts are reused only for the same settings, and discovery only when
// recorded.
func TestFactsCache(t *testing.T) {
	c := newFactsCache()
	a := Account{Name: "a", Namespaces: []string{"x"}}
	if c.get(a) != nil {
		t.Fatal("facts before any probe")
	}
	c.probed(a, &rest.Config{Host: "h"}, nil, &kubesvcv1.AccountInfo{Name: "a"})
	f := c.get(a)
	if f == nil || f.cfg.Host != "h" || f.keys != nil {
		t.Fatalf("after probe: %+v", f)
	}
	c.discovered(a, []*kubesvcv1.StreamKey{key("ConfigMap", "")})
	if f := c.get(a); f == nil || len(f.keys) != 1 {
		t.Fatalf("after discovery: %+v", f)
	}
	changed := Account{Name: "a", Namespaces: []string{"y"}}
	if c.get(changed) != nil {
		t.Fatal("facts reused for changed settings")
	}
	c.forget(func(string) bool { return false })
	if c.get(a) != nil {
		t.Fatal("facts kept after forget")
	}
}
