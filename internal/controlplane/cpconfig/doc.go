// Package cpconfig reads and validates the control plane's YAML
// configuration file.
//
// The keys keep the names the Armory Scale Agent plugin documents for
// Clouddriver (kubesvc.grpc.server.port, kubesvc.cache.operationWaitMs, ...)
// so that an existing plugin configuration carries over, plus a few keys of
// our own for what a standalone service needs and a Clouddriver plugin got
// from its host: the replica id, the SQL database, logging. docs/controlplane-config.md
// lists every key with its type, default, meaning and whether this build
// implements it yet.
//
// Configuration comes in two layers. File mirrors the YAML document: values
// keep their documented units (seconds, milliseconds, weeks, a period and
// its TimeUnit) and settings with a non-zero default are pointers, so that
// "not set" can be told from "set to zero". Read parses files into a File,
// a later file overriding the keys it sets in an earlier one (a list it sets
// replaces the earlier list). New turns a File into a Config: defaults
// applied, durations converted to time.Duration and data sizes to bytes,
// every constraint checked. Load does both; cmd/controlplane can change a
// File (command-line flags) between Read and New. Config.ServerConfig maps
// the result onto the runtime controlplane.Config that the server takes.
//
// Parsing is strict (package yamlstrict). An unknown key is an error naming
// the file, the full dotted key and the line, with a hint for a near miss:
//
//	config /etc/kubesvc.yml: unknown key "kubesvc.grpc.server.prot" (line 4); did you mean "port"?
//
// Wrong types and failed validations name their key the same way, and one
// load reports all of them. As in Spring Boot, a key may also be written as
// a dotted path (kubesvc.cluster: local). Documented keys this build does not
// act on yet are accepted and listed in Config.Unsupported, for the caller
// to log, rather than rejected; settings whose absence would weaken security
// (gRPC TLS, x509 subject filtering) are rejected instead when turned on, so
// that the control plane never silently serves plaintext.
//
// The package has no globals besides its fixed key tables and starts no
// goroutines.
package cpconfig
