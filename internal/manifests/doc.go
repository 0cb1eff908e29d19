// Package manifests serves Clouddriver's manifest and job reads from the control
// plane's cache: the calls Orca makes after a deploy (WaitForManifestStable,
// Find Artifacts From Resource) and its deploy strategies make to pick a
// cluster's ReplicaSets.
//
//   - GET /manifests/{account}/{location}/{name} (and /manifests/{account}/{name},
//     /manifests/{account}/_/{name} for cluster-scoped objects): one object, by
//     Clouddriver's "kind name", with its moniker, the artifacts it references,
//     its Events (from the cache) and Clouddriver's status: stable, paused,
//     available, failed, computed by the same rules, kind by kind (status.go).
//   - GET /manifests/{account}/{location}/{kind}/cluster/{app}/{cluster}: the
//     coordinates of a Spinnaker cluster's objects of one kind.
//   - .../dynamic/{criteria}: one of them, the oldest, newest, second newest,
//     largest or smallest.
//   - GET /applications/{app}/jobs/{account}/{location}/{id}: a Job's status
//     with its Pods, which Orca's Run Job stage polls until it succeeded or
//     failed (jobs.go), and the properties its Pod wrote to a container's log
//     (properties.go), read through the Kubernetes API proxy.
//   - GET /instances/{account}/{namespace}/{id}/console: a Pod's logs, for
//     Deck (console.go), read the same way.
//
// Everything is read from the cache every replica shares, so any replica
// answers alike, and as fresh as the agents' watches. Kinds are resolved
// against the account's cached streams (names.go): Clouddriver's spellings
// ("replicaSet", "Rollout.argoproj.io"), kinds, plurals and the kubectl short
// names of built-in kinds.
package manifests
