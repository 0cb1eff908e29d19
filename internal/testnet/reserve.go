package testnet

import (
	"fmt"
	"testing"
)

// Reserve returns a loopback address, 127.0.0.1:port, that stays the
// test's until it ends. Nothing listens there until the test (or a server
// it starts) listens on it, so a connection is refused as at a port nobody
// uses; and no other socket of the machine gets the port meanwhile, as one
// may get a port found free and let go (a listener picking a free port, or
// a connection its local one). So a server may stop and start again on
// the address, and a client be pointed at a server that is not there yet.
//
// On Linux the port is held by a socket bound to it that does not listen
// (SO_REUSEADDR): the kernel never picks a bound port for another socket,
// and a listener of the test (Go's set SO_REUSEADDR) may still bind it.
// Elsewhere the port is only found free.
func Reserve(t testing.TB) string {
	t.Helper()
	addr, release, err := ReserveAddr()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return addr
}

// ReserveAddr is Reserve for code without a test at hand: the port is
// reserved until release is called.
func ReserveAddr() (addr string, release func(), err error) {
	addr, release, err = reserve()
	if err != nil {
		return "", nil, fmt.Errorf("testnet: reserve a loopback port: %w", err)
	}
	return addr, release, nil
}
