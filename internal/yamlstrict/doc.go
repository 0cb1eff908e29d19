// Package yamlstrict decodes YAML configuration files into Go structs
// strictly, so that a typo in a key cannot silently turn a setting off.
//
// A Decoder walks the yaml.Node tree of each document against the
// destination struct (fields are matched by their yaml tag, or an alias tag
// for an alternative spelling) and reports every problem of a document at
// once as *KeyError values naming the file, the full dotted key path
// (kubesvc.grpc.server.port, accounts[1].kinds) and the line: unknown keys
// (with a "did you mean" hint for a near miss), values of the wrong type, and
// keys set twice. Decoding several documents into the same struct overrides
// the keys each one sets: nested mappings merge key by key, a list replaces
// the earlier list wholesale, and an explicit null resets a key to its zero
// value (an absent pointer, so a default applies again).
//
// The Decoder remembers where every key was last set, so that validation
// after decoding can report its errors at the right file and line
// (Decoder.KeyError). Keys that a product documents but does not implement
// can be accepted, subtree and all, through Decoder.IsUnsupported; they are
// listed by Decoder.Unsupported for the caller to log. With
// Decoder.DottedKeys, a key written as a dotted path (kubesvc.cluster: local,
// as Spring Boot allows) is read as the nested keys it names.
//
// YAML anchors, aliases and merge keys (<<: *anchor) work. A field type can
// decode itself by implementing Unmarshaler, or NodeUnmarshaler when it needs
// to report several errors, record where its sub-keys were set or decode
// parts of its node as ordinary values. The package has no globals.
package yamlstrict
