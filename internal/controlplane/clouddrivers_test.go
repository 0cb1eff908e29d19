package controlplane

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// fixedPeers is a peer discovery double: a list, as static discovery
// reports it (every peer ready since start).
type fixedPeers []Peer

func (p fixedPeers) Peers() []Peer { return p }

// Discovery says where replicas are, heartbeats whether they are alive: a
// static peer whose heartbeats stopped, or that has none, is not ready, and
// its lastUpdated is its last heartbeat.
func TestClouddriversMergeDiscoveryWithHeartbeats(t *testing.T) {
	st := storetest.SQLite(t)
	started := time.Now().Add(-time.Hour)
	peers := fixedPeers{{ID: "cp-1", BaseURL: "http://a:7002", Ready: true, LastUpdated: started},
		{ID: "cp-2", BaseURL: "http://b:7002", Ready: true, LastUpdated: started},
		{ID: "cp-3", BaseURL: "http://c:7002", Ready: true, LastUpdated: started},
		{ID: "cp-4", BaseURL: "http://d:7002", Ready: true, LastUpdated: started}}
	s, err := New(Config{ID: "cp-1", Peers: peers, HeartbeatPeriod: time.Second, Log: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	fresh, stale := time.Now().Add(-time.Second), time.Now().Add(-time.Minute)
	s.cluster.mu.Lock()
	s.cluster.replicas = map[string]store.Replica{
		"cp-1": {ID: "cp-1", BaseURL: "http://a:7002", HeartbeatAt: fresh},
		"cp-2": {ID: "cp-2", BaseURL: "http://b:7002", HeartbeatAt: fresh},
		"cp-3": {ID: "cp-3", BaseURL: "http://c:7002", HeartbeatAt: stale},
	}
	s.cluster.mu.Unlock()
	got := map[string]clouddriver{}
	for _, c := range s.clouddrivers() {
		got[c.ID] = c
	}
	for id, want := range map[string]struct {
		ready   bool
		updated time.Time
	}{"cp-1": {true, fresh}, "cp-2": {true, fresh}, "cp-3": {false, stale}, "cp-4": {false, started}} {
		c := got[id]
		// To the millisecond, whatever the source (heartbeats are
		// recorded in milliseconds, discovery's times are not).
		wantUpdated := want.updated.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
		if c.Ready != want.ready || c.LastUpdated != wantUpdated {
			t.Errorf("%s: ready %v, lastUpdated %s; want %v, %s", id, c.Ready, c.LastUpdated, want.ready, wantUpdated)
		}
	}

	// cp-3 is reaped: its row goes; it stays not ready, last updated at
	// its last heartbeat (not at discovery's start).
	beat := time.UnixMilli(time.Now().Add(-2 * time.Minute).UnixMilli())
	s.cluster.set(nil, nil, nil, []store.Replica{{ID: "cp-1", HeartbeatAt: fresh}, {ID: "cp-3", HeartbeatAt: beat}})
	s.cluster.set(nil, nil, nil, []store.Replica{{ID: "cp-1", HeartbeatAt: fresh}})
	for _, c := range s.clouddrivers() {
		if c.ID == "cp-3" && (c.Ready || c.LastUpdated != beat.UTC().Format(time.RFC3339Nano)) {
			t.Errorf("reaped cp-3: ready %v, lastUpdated %s; want false, its last heartbeat %s", c.Ready, c.LastUpdated, beat.UTC().Format(time.RFC3339Nano))
		}
	}

	// Heartbeats off: discovery says which are ready; a recorded replica
	// it no longer lists is not.
	s.cfg.NoHeartbeat = true
	s.cfg.Peers = peers[:3]
	got = map[string]clouddriver{}
	for _, c := range s.clouddrivers() {
		got[c.ID] = c
	}
	for id, want := range map[string]bool{"cp-1": true, "cp-2": true, "cp-3": true} {
		if got[id].Ready != want {
			t.Errorf("heartbeats off: %s ready %v, want %v", id, got[id].Ready, want)
		}
	}
	s.cfg.Peers = peers[:2]
	got = map[string]clouddriver{}
	for _, c := range s.clouddrivers() {
		got[c.ID] = c
	}
	if got["cp-3"].Ready {
		t.Error("heartbeats off: cp-3, no longer discovered, is ready")
	}
}

func TestGoneReplicasAreForgotten(t *testing.T) {
	now := time.Now()
	gone := map[string]time.Time{"old": now.Add(-25 * time.Hour), "recent": now.Add(-time.Hour)}
	for i := range maxGone {
		gone[fmt.Sprintf("pod-%d", i)] = now.Add(-time.Duration(i+2) * time.Hour / 100)
	}
	pruneGone(gone, now)
	if _, ok := gone["old"]; ok {
		t.Error("a replica gone for over a day is still remembered")
	}
	if len(gone) != maxGone {
		t.Errorf("%d replicas remembered, want %d", len(gone), maxGone)
	}
	if _, ok := gone["recent"]; !ok {
		t.Error("the most recent replica gone was forgotten")
	}
	if _, ok := gone[fmt.Sprintf("pod-%d", maxGone-1)]; ok {
		t.Error("the oldest beyond the cap is still remembered")
	}
}
