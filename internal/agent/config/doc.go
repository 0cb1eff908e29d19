// Package config reads, validates and watches the agent's YAML configuration
// (the Armory Scale Agent's armory-agent.yml and its overrides).
//
// Configuration comes in two layers. File mirrors the YAML document: every
// documented key has a field, values keep the documented units (nanoseconds,
// seconds, milliseconds) and settings with a non-zero default are pointers, so
// "not set" can be told apart from "set to zero". Read parses one or more
// files into a File; a later file overrides the keys it sets in an earlier one,
// and a list it sets (kubernetes.accounts, for instance) replaces the earlier
// list wholesale. New turns a File into a Config: defaults applied, units
// converted to time.Duration, names normalised, every constraint checked. Load
// does both. cmd/agent can change a File (command-line flags) between Read and
// New.
//
// Parsing is strict (package yamlstrict does the decoding). A key the agent does not know is an error naming the
// file, the full dotted key path (kubernetes.accounts[1].kindz) and the line;
// a value of the wrong type and a failed validation name their key the same
// way, so a typo cannot silently turn a setting off. Keys that the Armory
// documentation lists but this agent does not implement (log rotation, TLS
// for the health endpoint, Vault secrets, ...) are accepted and reported in
// Config.Unsupported so the caller can log them. docs/agent-config.md lists every key.
//
// Watcher follows the files at run time. It watches their parent directories,
// so the atomic symlink swap of a mounted ConfigMap and the rename-over-write
// of editors are seen, debounces bursts of events, reloads, and hands each new
// valid Config that differs from the current one to a callback. An invalid
// file is logged and reported, and the previous Config stays in force.
// DiffAccounts tells the caller which accounts were added, removed or changed
// between two Configs, which is what the account supervisor acts on.
//
// The package has no globals and starts no goroutine outside Watcher.Run,
// which waits for everything it starts before returning.
package config
