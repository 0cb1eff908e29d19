package config

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
