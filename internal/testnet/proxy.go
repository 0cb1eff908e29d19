// Package testnet makes network trouble on loopback for tests: a TCP
// proxy in front of a real server (an API server, a database) that can be
// cut (connections reset, the port closed) and restored on the same
// address, or frozen (connections held open, nothing crossing them), as a
// partition that drops packets does.
package testnet

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy relays the connections made to Addr to its target.
type Proxy struct {
	target string
	frozen atomic.Bool

	mu    sync.Mutex // guards addr, lis, conns
	addr  string
	lis   net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup // the accept loop and the relays
}

// Start listens on a loopback port reserved for the test (Reserve: Cut
// and Restore leave no other socket a chance to take it) and relays to
// target until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target, addr: Reserve(t)}
	p.Restore(t)
	t.Cleanup(func() {
		p.Freeze(false)
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Restore listens again on the proxy's address after Cut.
func (p *Proxy) Restore(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	lis, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.lis, p.addr, p.conns = lis, lis.Addr().String(), map[net.Conn]bool{}
	p.wg.Go(func() { p.accept(lis) })
}

func (p *Proxy) accept(lis net.Listener) {
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.lis != lis {
			// Cut while this connection was being accepted or dialled: it
			// goes with the others.
			p.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(up, p.reader(c)); up.Close() })
		p.wg.Go(func() { _, _ = io.Copy(c, p.reader(up)); c.Close() })
	}
}

// reader reads from c, holding what it read while the proxy is frozen.
func (p *Proxy) reader(c net.Conn) io.Reader {
	return readerFunc(func(b []byte) (int, error) {
		n, err := c.Read(b)
		for p.frozen.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// Cut closes the port and every connection through it: the server is
// gone (connections reset, new ones refused). The port stays reserved.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Freeze holds every connection open with nothing crossing it (on), or
// lets them go on (off).
func (p *Proxy) Freeze(on bool) { p.frozen.Store(on) }
