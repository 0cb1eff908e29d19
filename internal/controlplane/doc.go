// Package controlplane is the service agents connect to: the gRPC endpoint
// (one bidirectional stream per agent, AgentService.Connect), the registry
// of connected agents, the ingest that persists what agents stream into the
// SQL cache and acknowledges it, and the REST API over agents and the cache.
//
// Server.Run starts the gRPC and HTTP listeners as tasks under one errgroup:
// the first failure cancels the rest, and Run returns once every goroutine it
// started has ended. A session (one agent stream) likewise runs its receive
// and send loops under an errgroup; ending either ends the session and
// removes the agent from the registry.
//
// Later issues add the dynamic-account reconciler, operation routing and
// peer replicas here.
package controlplane
