// Package kubesvcv1 is the wire protocol between agents and the control
// plane, generated from agent.proto by scripts/gen-proto.sh (do not edit the
// .pb.go files). One bidirectional stream per agent (AgentService.Connect)
// carries registration, change batches and their acknowledgements, account
// status, heartbeats, operations and dynamic-account commands.
package kubesvcv1
