package clusterharness

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is a TCP proxy (a test fixture, as a Kubernetes Service would be):
// each connection goes to the first target that accepts it, starting after
// the one the previous connection got (round robin), each tried with a
// short dial timeout so that a dead or cut-off target is skipped.
type Proxy struct {
	lis     net.Listener
	targets []string

	mu     sync.Mutex // guards next, conns and closed
	next   int
	conns  map[net.Conn]bool
	closed bool // Close began: connections are no longer tracked but closed
	wg     sync.WaitGroup
}

// NewProxy listens on listen ("host:0" picks a port) and forwards to
// targets.
func NewProxy(listen string, targets ...string) (*Proxy, error) {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{lis: lis, targets: targets, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track records c as open (on) or forgets it; once Close began it closes
// c instead and reports false, so that no connection outlives Close.
func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !on:
		delete(p.conns, c)
	case p.closed:
		_ = c.Close()
		return false
	default:
		p.conns[c] = true
	}
	return true
}

func (p *Proxy) serve(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	start := p.next
	p.next++
	p.mu.Unlock()
	var up net.Conn
	for i := range p.targets {
		t := p.targets[(start+i)%len(p.targets)]
		var err error
		if up, err = net.DialTimeout("tcp", t, 300*time.Millisecond); err == nil {
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	// A connection that got here as Close ran is closed, not piped.
	if !p.track(c, true) || !p.track(up, true) {
		return
	}
	defer p.track(c, false)
	defer p.track(up, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close is not enough for gRPC: end both directions.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// Close stops listening and ends every connection.
func (p *Proxy) Close() error {
	err := p.lis.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
