// Package store is the control plane's SQL persistence: the cache of what
// agents stream (objects and stream positions) and, as the later issues
// land, the dynamic-account lifecycle (kubesvc_accounts), operation history
// and replica assignments.
//
// One Store interface, one file per SQL dialect (sqlite.go, mysql.go for
// MySQL and MariaDB, postgres.go; Open picks one by driver name), schema
// changes as numbered migrations applied at Open, and one conformance suite
// (package storetest) that every backend runs: the server backends on
// databases of the servers scripts/test-dbs.sh starts.
package store
