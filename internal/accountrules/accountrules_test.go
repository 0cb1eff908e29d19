package accountrules

import (
	"fmt"
	"testing"
)

func TestRules(t *testing.T) {
	if got := fmt.Sprint(Kinds([]string{"Pod", "deployment"}, []string{"Service", "Deployment", "POD"})); got != `[omitKinds[1]: kind "Deployment" is also listed in kinds omitKinds[2]: kind "POD" is also listed in kinds]` {
		t.Errorf("Kinds: %s", got)
	}
	if p := Kinds(nil, []string{"Pod"}); p != nil {
		t.Errorf("Kinds without kinds: %v", p)
	}
	if got := fmt.Sprint(Roles("read", []string{"ok", "a b", "", "tab\there"})); got != `[permissions.read[1]: role "a b" must be non-empty and contain no whitespace permissions.read[2]: role "" must be non-empty and contain no whitespace permissions.read[3]: role "tab\there" must be non-empty and contain no whitespace]` {
		t.Errorf("Roles: %s", got)
	}
	for key, ok := range map[string]bool{"READ": true, "write": true, "EXECUTE": false, "": false} {
		if err := PermissionKey(key); (err == nil) != ok {
			t.Errorf("PermissionKey(%q): %v", key, err)
		}
	}
	for key, ok := range map[string]bool{"READ": true, "write": true, "Execute": true, "CREATE": true, "REED": false, "": false} {
		if err := AuthorizationKey(key); (err == nil) != ok {
			t.Errorf("AuthorizationKey(%q): %v", key, err)
		}
	}
}
