package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent"
)

// An agent whose keepalive interval is longer than the control plane's
// agent timeout still heartbeats often enough to keep its session: the
// Welcome tells it the timeout.
func TestHeartbeatsFollowTheControlPlanesTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db"), agentTimeout: timeout})
	ag := startAgentWith(t, "agent-heartbeat", "zone-test", cp.grpc, func(c *agent.Config) {
		c.KeepaliveTime = time.Minute // pings (and, before, heartbeats) every minute
	})
	deadline := time.Now().Add(30 * time.Second)
	for ag.Stats().Connects.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not connect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The control plane checks for silence every timeout/3: over 2.5
	// timeouts, a silent agent is dropped and reconnects.
	time.Sleep(timeout * 5 / 2)
	if n := ag.Stats().Connects.Load(); n != 1 {
		t.Errorf("the agent connected %d times; its session was dropped as silent", n)
	}
}
