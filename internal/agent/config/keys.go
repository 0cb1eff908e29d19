package config

import "strings"

// unsupportedKey reports whether a key (a dotted path with list indexes
// written as [], such as kubernetes.accounts[].oAuthScopes) is documented
// for the Armory agent but not implemented here. Such keys (and anything
// below them) are accepted and listed in Config.Unsupported rather than
// rejected.
func unsupportedKey(generic string) bool {
	switch generic {
	case "logging.multiWrite", "logging.maxSizeMb", "logging.maxAgeDays", "logging.maxBackups",
		"logging.localTime", "logging.compress", "logging.fields",
		"server.ssl", "secrets", "tasks.queueCheckFrequencyMs", "dynamicAccounts",
		"kubernetes.accounts[].oAuthScopes", "kubernetes.accounts[].onlySpinnakerManaged":
		return true
	}
	return false
}

// notActedOn lists the modelled keys whose feature this agent does not
// have, when the file asks for it: they are validated, then reported in
// Config.Unsupported like the keys above, so that the caller logs that
// they take no effect.
func notActedOn(f *File) []string {
	var out []string
	report := func(set bool, key string) {
		if set {
			out = append(out, key)
		}
	}
	report(f.TimeoutSeconds != 0, "timeoutSeconds")
	report(f.Clouddriver.KeepAliveOperationSeconds != 0, "clouddriver.keepAliveOperationSeconds")
	// The agent always removes managedFields from what it applies and
	// never adds field defaults: only the values asking otherwise are
	// reported (allowed, the default, defers to an annotation either way).
	ssa := f.Kubernetes.ServerSideApply
	keep := func(v string) bool { return strings.EqualFold(strings.TrimSpace(v), string(SSANever)) }
	add := func(v string) bool { return strings.EqualFold(strings.TrimSpace(v), string(SSAAlways)) }
	clear, defaults := keep(ssa.ClearManagedFields), add(ssa.ManifestDefaults)
	for _, k := range ssa.Kinds {
		clear = clear || keep(k.ClearManagedFields)
		defaults = defaults || add(k.ManifestDefaults)
	}
	report(clear, "kubernetes.serverSideApply.clearManagedFields")
	report(defaults, "kubernetes.serverSideApply.manifestDefaults")
	// A global always or never decides for every kind: a kind asking for
	// something else is overruled.
	mode := func(v string) string { return strings.ToLower(strings.TrimSpace(v)) }
	overruled := false
	if g := mode(ssa.Enabled); g == string(SSAAlways) || g == string(SSANever) {
		for _, k := range ssa.Kinds {
			overruled = overruled || mode(k.Enabled) != "" && mode(k.Enabled) != g
		}
	}
	report(overruled, "kubernetes.serverSideApply.kinds[].enabled")
	metrics := false
	for _, a := range f.Kubernetes.Accounts {
		metrics = metrics || a.Metrics
	}
	report(metrics, "kubernetes.accounts[].metrics")
	return out
}
