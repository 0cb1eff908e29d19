// Package agentapp wires the agent binary: it loads the YAML configuration
// (internal/agent/config), turns it into an agent.Config, runs the agent and
// the configuration watcher under one errgroup, and hands every valid
// configuration change to the running agent, so accounts are added, removed
// and changed without a restart.
package agentapp
