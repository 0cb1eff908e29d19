// Package cluster holds the end-to-end tests of a cluster of control-plane
// replicas: real controlplane and agent processes (internal/clusterharness)
// on one shared MariaDB or PostgreSQL database, peers discovered through
// EndpointSlices of a real API server, replicas killed with SIGKILL or cut
// off the network while operations run and objects change.
package cluster
