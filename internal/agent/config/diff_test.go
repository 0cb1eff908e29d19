package config

import (
	"testing"
	"time"
)

func names(accounts []Account) []string {
	var out []string
	for _, a := range accounts {
		out = append(out, a.Name)
	}
	return out
}

func changedNames(changes []AccountChange) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.New.Name)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDiffAccounts(t *testing.T) {
	prev := mustLoad(t, `
kubernetes:
  accounts:
    - {name: same, serviceAccount: true, namespaces: [a, b]}
    - {name: gone, kubeconfigFile: /gone}
    - {name: kinds, kubeconfigFile: /k, kinds: [pod]}
    - {name: perms, kubeconfigFile: /p, permissions: [{READ: [r1]}]}
    - {name: age, kubeconfigFile: /a}
`)
	next := mustLoad(t, `
logging: {level: debug}
kubernetes:
  accounts:
    - {name: new2, serviceAccount: true}
    - {name: age, kubeconfigFile: /a, maxResumableResourceAgeMs: 1000}
    - {name: perms, kubeconfigFile: /p, permissions: {READ: [r1, r2]}}
    - {name: kinds, kubeconfigFile: /k, kinds: [pod, service]}
    - {name: same, serviceAccount: true, namespaces: [a, b]}
    - {name: new1, kubeconfigFile: /n}
`)
	d := DiffAccounts(prev, next)
	if got := names(d.Added); !equalStrings(got, []string{"new1", "new2"}) {
		t.Errorf("Added = %v", got)
	}
	if got := names(d.Removed); !equalStrings(got, []string{"gone"}) {
		t.Errorf("Removed = %v", got)
	}
	if got := changedNames(d.Changed); !equalStrings(got, []string{"age", "kinds", "perms"}) {
		t.Errorf("Changed = %v", got)
	}
	if c := d.Changed[0]; c.Old.MaxResumableResourceAge != 5*time.Minute || c.New.MaxResumableResourceAge != time.Second {
		t.Errorf("Changed[0] = %+v", c)
	}
	if d.Empty() {
		t.Error("Empty() = true")
	}
	if d := DiffAccounts(prev, prev); !d.Empty() {
		t.Errorf("self diff = %+v", d)
	}

	// Same accounts in a different order and spelling are not a change.
	reordered := mustLoad(t, `
kubernetes:
  accounts:
    - {name: age, kubeConfigFile: /a}
    - {name: perms, kubeconfigFile: /p, permissions: {read: [r1]}}
    - {name: kinds, kubeconfigFile: /k, kinds: [pod], omitKinds: []}
    - {name: gone, kubeconfigFile: /gone}
    - {name: same, serviceAccount: true, namespaces: [a, b], customResourceDefinitions: []}
`)
	if d := DiffAccounts(prev, reordered); !d.Empty() {
		t.Errorf("reordered diff = %+v", d)
	}

	if d := DiffAccounts(nil, prev); len(d.Added) != 5 || len(d.Removed)+len(d.Changed) != 0 {
		t.Errorf("from nil = %+v", d)
	}
	if d := DiffAccounts(prev, nil); len(d.Removed) != 5 || len(d.Added)+len(d.Changed) != 0 {
		t.Errorf("to nil = %+v", d)
	}
}

func TestSameConfig(t *testing.T) {
	a := mustLoad(t, "server: {port: 1}\n")
	b := mustLoad(t, "server: {port: 1}\nlogging: {maxSizeMb: 3}\n") // other source, unsupported key
	if !sameConfig(a, b) {
		t.Error("configs differing only in sources and unsupported keys are not the same")
	}
	c := mustLoad(t, "server: {port: 2}\n")
	if sameConfig(a, c) || sameConfig(a, nil) || !sameConfig(nil, nil) {
		t.Error("sameConfig wrong")
	}
}

func TestWholeNumberFloats(t *testing.T) {
	c := mustLoad(t, "clouddriver: {backoff: {baseDelay: 1e9, maxDelay: 1.2e11}}\n")
	if c.Clouddriver.Backoff.BaseDelay != time.Second || c.Clouddriver.Backoff.MaxDelay != 120*time.Second {
		t.Errorf("backoff = %+v", c.Clouddriver.Backoff)
	}
}

func TestRestartNeeded(t *testing.T) {
	base := "clouddriver: {grpc: 'cp:9091'}\nkubernetes:\n  accounts:\n    - {name: a, serviceAccount: true}\n"
	a := mustLoad(t, base)
	if RestartNeeded(a, mustLoad(t, "clouddriver: {grpc: 'cp:9091'}\nkubernetes:\n  accounts:\n    - {name: b, serviceAccount: true}\n")) {
		t.Error("an account edit alone asks for a restart")
	}
	if !RestartNeeded(a, mustLoad(t, base+"logging: {level: debug}\n")) {
		t.Error("a logging change does not ask for a restart")
	}
}
