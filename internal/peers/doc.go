// Package peers discovers the control-plane replicas of a cluster
// (kubesvc.cluster): a static list, or the EndpointSlices of the Services
// named with a prefix (spin-clouddriver by default) in a namespace of the
// Kubernetes cluster the replicas run in, watched through a client-go
// informer so that the list follows pods coming, going and turning ready
// without polling.
//
// Discovery only says who the peers are and where their REST API answers;
// the replicas coordinate through the shared database (see
// internal/controlplane: heartbeats, agent sessions, account assignments).
package peers
