package config

import "github.com/kubesvc/kubesvc/internal/yamlstrict"

// ErrUnknownKey is wrapped by the KeyError reporting a key the agent does not know.
var ErrUnknownKey = yamlstrict.ErrUnknownKey

// KeyError is a configuration error about one key: unknown, of the wrong
// type, or failing validation. Its message is
//
//	config FILE: unknown key "KEY" (line N); HINT
//	config FILE: KEY: MESSAGE (line N)
//
// with the file, line and hint left out when unknown. Key is the full
// dotted path, e.g. kubernetes.accounts[1].kinds.
type KeyError = yamlstrict.KeyError
