package kubesvcv1

import "strings"

// SyntheticSelectorPrefix starts the selector_hash of a synthetic stream:
// objects the agent builds from its configuration (an account's namespaces
// and declared custom kinds with only_namespaced_resources) rather than
// lists and watches. Such a stream has no resource versions: a deployed
// object is never awaited in it.
const SyntheticSelectorPrefix = "synthetic-"

// IsSyntheticSelector reports whether selectorHash marks a synthetic stream.
func IsSyntheticSelector(selectorHash string) bool {
	return strings.HasPrefix(selectorHash, SyntheticSelectorPrefix)
}
