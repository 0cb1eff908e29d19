// Package scrub prepares Kubernetes objects for leaving the agent process.
//
// The agent lists and watches every kind in its clusters and streams the
// objects to the control plane. Two things must not travel with them: the
// contents of Secrets, which must never leave the agent, and
// metadata.managedFields, which is bulky server-side-apply bookkeeping that
// nothing downstream reads. Every object goes through this package, in place,
// immediately before it is encoded and sent.
//
// What is changed:
//
//   - metadata.managedFields is deleted from every object, whatever its kind.
//   - For a sensitive object (a core/v1 Secret, plus any extra GroupKinds given
//     to New), every value of the top-level data and stringData maps is
//     replaced by the empty string. The key names are kept, so a UI can still
//     show which keys a Secret holds; the values never are. A data or
//     stringData field that is not a JSON object is deleted. Key matching is
//     case-insensitive here ("Data" is scrubbed too), because some decoders
//     are.
//   - The kubectl.kubernetes.io/last-applied-configuration annotation of a
//     sensitive object holds the full Secret as kubectl last applied it. It is
//     parsed as JSON, scrubbed by the same rules (its own top-level data and
//     stringData always, as it describes a Secret; Secrets among the items if
//     it is a List) and re-encoded compactly. If it is not a single valid JSON
//     object it is deleted entirely: something unparsable may contain the
//     secret and is never passed through.
//   - The same annotation on a non-sensitive object is normally left exactly as
//     it is. It is parsed and scrubbed only if its text could embed a
//     sensitive object: it contains a quote directly followed by a sensitive
//     kind name (e.g. `"Secret`), or a `\u` escape that could hide one. The
//     check is a substring search and is exact in one direction: no annotation
//     that embeds a Secret at any depth of JSON-in-a-string escaping gets past
//     it.
//   - Lists are walked: in an object whose kind ends in "List" every element
//     of items is scrubbed like a top-level object. An element without a kind
//     takes the kind from the list (SecretList -> Secret) and the list's
//     apiVersion, as apimachinery does when it decodes a typed list.
//
// An object is recognised by its apiVersion and kind. The group is the part
// of apiVersion before "/" (none for "v1"); an object with a kind but no
// apiVersion matches a sensitive kind by name alone, in any group. An object
// with no kind at all cannot be recognised, so callers must keep the
// GroupVersionKind set, as the dynamic client and raw list/watch responses do.
// Other places a user may have copied secret material into (custom
// annotations, ConfigMaps, environment variables in a pod spec) are out of
// scope: the package scrubs what Kubernetes defines as secret.
//
// Two kinds of entry points share these rules. ScrubMap, ScrubObject and
// ScrubList work in place on decoded unstructured objects. ScrubJSON works on the raw JSON of a
// single object, as the agent's list and watch code receives it, and is built
// for the hot path: one validating pass over the bytes finds the few fields
// that matter, and for the common case, a non-sensitive object, the only
// possible change, dropping managedFields, is a byte splice. Nothing is
// decoded or re-encoded, and an object with nothing to remove is returned as
// the same slice without any allocation. Only sensitive objects, lists, and
// odd inputs (a repeated key that matters, a suspicious annotation) take the
// slow path: decode into a map, ScrubMap,
// re-encode compactly with sorted keys. The decoder there is the package's
// own and refuses a member name repeated within one JSON object
// (ErrDuplicateKey), because decoders disagree on which of the values counts
// and a Secret could pass for something else; Kubernetes never produces such
// JSON. A last-applied annotation with repeated names is dropped like any
// other invalid one.
//
// A Scrubber is immutable once built and safe for concurrent use. The
// package-level functions use one that treats only core/v1 Secrets as
// sensitive.
package scrub
