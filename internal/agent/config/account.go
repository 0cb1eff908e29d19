package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kubesvc/kubesvc/internal/accountrules"
	"github.com/kubesvc/kubesvc/internal/ident"
)

// account validates one kubernetes.accounts item; p is its key path.
func (v *validator) account(p string, f *FileAccount) Account {
	a := Account{
		Name:                    f.Name,
		KubeconfigFile:          f.KubeconfigFile,
		Context:                 f.Context,
		ServiceAccount:          f.ServiceAccount,
		Namespaces:              v.names(p+".namespaces", f.Namespaces),
		OmitNamespaces:          v.names(p+".omitNamespaces", f.OmitNamespaces),
		Kinds:                   v.names(p+".kinds", f.Kinds),
		OmitKinds:               v.names(p+".omitKinds", f.OmitKinds),
		OnlyNamespacedResources: f.OnlyNamespacedResources,
		MaxResumableResourceAge: time.Duration(orDefault(f.MaxResumableResourceAgeMs, int64(defaultMaxResumableResourceAge/time.Millisecond))) * time.Millisecond,
		Insecure:                f.Insecure,
		Metrics:                 f.Metrics,
		NoProxy:                 f.NoProxy,
	}
	if err := ident.Account(a.Name); err != nil {
		v.fail(p+".name", "%v", err)
	}
	switch {
	case a.KubeconfigFile != "" && a.ServiceAccount:
		v.fail(p+".serviceAccount", "cannot be combined with kubeconfigFile; set exactly one of them")
	case a.KubeconfigFile == "" && !a.ServiceAccount:
		v.fail(p+".kubeconfigFile", "required unless serviceAccount is true; set exactly one of them")
	case a.ServiceAccount && a.Context != "":
		v.fail(p+".context", "applies to kubeconfigFile only, not to serviceAccount")
	}
	if a.Namespaces != nil && a.OmitNamespaces != nil {
		v.fail(p+".omitNamespaces", "cannot be combined with namespaces")
	}
	if a.OnlyNamespacedResources && a.Namespaces == nil {
		v.fail(p+".onlyNamespacedResources", "requires namespaces")
	}
	for _, pr := range accountrules.Kinds(a.Kinds, a.OmitKinds) {
		v.fail(p+"."+pr.Field, "%s", pr.Message)
	}
	if f.MaxResumableResourceAgeMs != nil {
		v.nonNegative(p+".maxResumableResourceAgeMs", *f.MaxResumableResourceAgeMs)
	}
	for i, fc := range f.CustomResourceDefinitions {
		cp := fmt.Sprintf("%s.customResourceDefinitions[%d]", p, i)
		crd := CRD{Kind: fc.Kind, Scope: ScopeNamespaced}
		if kind, group, _ := strings.Cut(crd.Kind, "."); kind == "" || group == "" {
			v.fail(cp+".kind", "must be Kind.group, e.g. ServiceMonitor.monitoring.coreos.com, got %q", crd.Kind)
		}
		switch {
		case fc.Scope == "" || strings.EqualFold(fc.Scope, string(ScopeNamespaced)):
		case strings.EqualFold(fc.Scope, string(ScopeCluster)):
			crd.Scope = ScopeCluster
		default:
			v.fail(cp+".scope", "must be Namespaced or Cluster, got %q", fc.Scope)
		}
		a.CustomResourceDefinitions = append(a.CustomResourceDefinitions, crd)
	}
	a.Permissions = v.permissions(p+".permissions", f.Permissions)
	return a
}

// names checks a list of namespaces or kinds for empty entries.
func (v *validator) names(p string, list []string) []string {
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			v.fail(fmt.Sprintf("%s[%d]", p, i), "must not be empty")
		}
	}
	return nilIfEmpty(list)
}

// permissions normalises the keys to READ and WRITE. A role containing
// whitespace is rejected: the Armory agent silently drops such permissions,
// which opens the account to every user.
func (v *validator) permissions(p string, perms Permissions) map[string][]string {
	if len(perms) == 0 {
		return nil
	}
	out := map[string][]string{}
	for _, key := range slices.Sorted(maps.Keys(perms)) {
		if err := accountrules.PermissionKey(key); err != nil {
			v.fail(p+"."+key, "%v", err)
			continue
		}
		for _, pr := range accountrules.Roles(key, perms[key]) {
			v.fail(strings.TrimSuffix(p, ".permissions")+"."+pr.Field, "%s", pr.Message)
		}
		up := strings.ToUpper(key)
		out[up] = append(out[up], perms[key]...)
	}
	return out
}
