package agent

import (
	"testing"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// Asked to drop a dynamic account whose name it serves statically, the
// agent succeeds and keeps its static account: refusing left the control
// plane's dynamic row DELETE_FAILED for ever.
func TestDeleteDynamicKeepsTheStaticAccount(t *testing.T) {
	a := &Agent{
		accounts: map[string]Account{"static1": {Name: "static1"}},
		dynamic:  map[string]Account{"static1": {Name: "static1", Dynamic: true}, "dyn1": {Name: "dyn1", Dynamic: true}},
		infos:    map[string]*kubesvcv1.AccountInfo{"static1": {Name: "static1"}, "dyn1": {Name: "dyn1", Dynamic: true}},
	}
	res := a.deleteDynamic([]string{"static1", "dyn1", "unknown"})
	for _, r := range res {
		if !r.GetSuccess() || r.GetError() != "" {
			t.Errorf("%s: success %v, error %q", r.GetName(), r.GetSuccess(), r.GetError())
		}
	}
	if _, ok := a.accounts["static1"]; !ok || a.infos["static1"] == nil {
		t.Error("the static account was dropped")
	}
	if len(a.dynamic) != 0 || a.infos["dyn1"] != nil {
		t.Errorf("dynamic accounts left: %v", a.dynamic)
	}
}
