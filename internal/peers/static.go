package peers

import (
	"context"
	"net/http"
	"time"

	"github.com/kubesvc/kubesvc/internal/controlplane"
)

// Static is a fixed list of peers (kubesvc.cluster: static, or local with
// only this replica). Every peer is reported ready: a dead one is found out
// by its missing heartbeats.
type Static struct {
	peers []controlplane.Peer
}

// NewStatic returns the list; LastUpdated is the time of the call.
func NewStatic(peers []controlplane.Peer) *Static {
	now := time.Now()
	out := make([]controlplane.Peer, len(peers))
	for i, p := range peers {
		p.Ready, p.LastUpdated = true, now
		out[i] = p
	}
	return &Static{peers: out}
}

// Peers returns the list.
func (s *Static) Peers() []controlplane.Peer { return append([]controlplane.Peer(nil), s.peers...) }

// Routes registers nothing; Static is a controlplane.Extension so that it
// is wired like the other discoveries.
func (s *Static) Routes(*http.ServeMux) {}

// Run waits for ctx.
func (s *Static) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
