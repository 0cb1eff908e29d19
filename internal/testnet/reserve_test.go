package testnet

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

// A reserved address refuses connections until the test listens on it,
// and may be listened on again once that listener is closed.
func TestReserve(t *testing.T) {
	addr := Reserve(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("a connection to %s reserved and not listened on was accepted", addr)
	}
	for range 2 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on the reserved %s: %v", addr, err)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s while listened on: %v", addr, err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
		l.Close()
	}
	if runtime.GOOS != "linux" {
		return
	}
	// Another socket cannot take the port.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	_, port, _ := net.SplitHostPort(addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("another socket's bind to the reserved port: %v, want EADDRINUSE", err)
	}
}

// A proxy cut and restored serves on the same address; meanwhile its
// port refuses connections.
func TestProxyCutAndRestore(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("x"))
			c.Close()
		}
	}()
	p := Start(t, target.Addr().String())
	read := func() error {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, 1)
		_, err = c.Read(b)
		return err
	}
	if err := read(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	addr := p.Addr()
	p.Cut()
	if err := read(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("through the cut proxy: %v, want connection refused", err)
	}
	p.Restore(t)
	if p.Addr() != addr {
		t.Errorf("restored on %s, was %s", p.Addr(), addr)
	}
	if err := read(); err != nil {
		t.Errorf("through the restored proxy: %v", err)
	}
}
