package config

import (
	"cmp"
	"reflect"
	"slices"
)

// AccountDiff is the difference between the accounts of two Configs, each
// list sorted by account name.
type AccountDiff struct {
	Added   []Account
	Removed []Account
	Changed []AccountChange
}

// AccountChange is an account present in both Configs with any field different.
type AccountChange struct {
	Old, New Account
}

// Empty reports whether no account was added, removed or changed.
func (d AccountDiff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// Equal reports whether two accounts have the same settings.
func (a Account) Equal(b Account) bool { return reflect.DeepEqual(a, b) }

// DiffAccounts compares the accounts of prev and next by name. A nil prev
// has no accounts, so every account of next is added; likewise a nil next.
func DiffAccounts(prev, next *Config) AccountDiff {
	var d AccountDiff
	old := map[string]Account{}
	if prev != nil {
		for _, a := range prev.Kubernetes.Accounts {
			old[a.Name] = a
		}
	}
	seen := map[string]bool{}
	if next != nil {
		for _, a := range next.Kubernetes.Accounts {
			seen[a.Name] = true
			o, ok := old[a.Name]
			switch {
			case !ok:
				d.Added = append(d.Added, a)
			case !o.Equal(a):
				d.Changed = append(d.Changed, AccountChange{Old: o, New: a})
			}
		}
	}
	if prev != nil {
		for _, a := range prev.Kubernetes.Accounts {
			if !seen[a.Name] {
				d.Removed = append(d.Removed, a)
			}
		}
	}
	byName := func(a, b Account) int { return cmp.Compare(a.Name, b.Name) }
	slices.SortFunc(d.Added, byName)
	slices.SortFunc(d.Removed, byName)
	slices.SortFunc(d.Changed, func(a, b AccountChange) int { return cmp.Compare(a.New.Name, b.New.Name) })
	return d
}

// sameConfig reports whether two Configs have the same effective settings,
// ignoring where they were read from and which unsupported keys were set.
func sameConfig(a, b *Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Sources, y.Sources = nil, nil
	x.Unsupported, y.Unsupported = nil, nil
	return reflect.DeepEqual(x, y)
}

// RestartNeeded reports whether next changes settings other than
// kubernetes.accounts: the running agent applies account changes only, the
// rest at its next start.
func RestartNeeded(prev, next *Config) bool { return len(RestartSettings(prev, next)) > 0 }

// RestartSettings names the sections of the file whose settings differ
// between prev and next, kubernetes.accounts aside (e.g. "logging",
// "kubernetes (but accounts)"), in the file's order.
func RestartSettings(prev, next *Config) []string {
	if prev == nil || next == nil {
		return nil
	}
	x, y := *prev, *next
	x.Kubernetes.Accounts, y.Kubernetes.Accounts = nil, nil
	var out []string
	for _, s := range []struct {
		key  string
		a, b any
	}{
		{"agent", x.Agent, y.Agent}, {"clouddriver", x.Clouddriver, y.Clouddriver},
		{"kubernetes (but accounts)", x.Kubernetes, y.Kubernetes}, {"tasks", x.Tasks, y.Tasks},
		{"server", x.Server, y.Server}, {"logging", x.Logging, y.Logging}, {"prometheus", x.Prometheus, y.Prometheus},
		{"pprof", x.Pprof, y.Pprof}, {"timeoutSeconds", x.Timeout, y.Timeout},
		{"dynamicAccountsEnabled", x.DynamicAccountsEnabled, y.DynamicAccountsEnabled},
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			out = append(out, s.key)
		}
	}
	return out
}
