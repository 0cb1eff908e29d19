// Package clusterharness runs a cluster of real control-plane replicas and
// agents for the failover tests and the failover benchmark: each replica
// is a controlplane process in a network namespace of its own (a veth pair
// to the host, addresses in 10.x.y.z/30), registered as a peer through a
// real EndpointSlice; agents are agent processes on the host reaching the
// replicas through a TCP load balancer, as they would through a Kubernetes
// Service. A replica can be killed (SIGKILL) or cut off the network (its
// veth taken down: agents, peers, the database and the API server all lose
// it at once) and restored.
//
// Network namespaces need root (CAP_NET_ADMIN) and iproute2; Available
// reports whether this machine has them. Everything is loopback or
// namespaces created here; nothing leaves the machine.
package clusterharness
