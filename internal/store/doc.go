// Package store is the control plane's SQL persistence: the cache of what
// agents stream (objects and stream positions) and, as the later issues
// land, the dynamic-account lifecycle (kubesvc_accounts), operation history
// and replica assignments.
//
// One Store interface, one file per SQL dialect (sqlite.go today; MySQL and
// PostgreSQL follow), schema changes as numbered migrations applied at Open,
// and one conformance suite (package storetest) that every backend runs.
package store
