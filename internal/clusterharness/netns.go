package clusterharness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
)

// Available reports why network namespaces cannot be used here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2's ip command is missing (apt-get install iproute2)")
	}
	return nil
}

// Network is a bridge on the host joining network namespaces in one /24:
// the host has .1, the namespaces .2 and up, and reach each other over the
// bridge.
type Network struct {
	Bridge, HostIP string
	prefix         string // "10.a.b."
	n              atomic.Int32
}

// Netns is a network namespace on a Network: the host end of its veth pair
// is HostIf (on the bridge), the namespace has NSIP.
type Netns struct {
	Name, HostIf, HostIP, NSIP string
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var networkSeq atomic.Int32

// NewNetwork creates the bridge. Names and addresses derive from the
// process id, so concurrent test processes do not collide.
func NewNetwork() (*Network, error) {
	pid := os.Getpid()
	k := int(networkSeq.Add(1))
	nw := &Network{
		// Interface names are at most 15 characters: ksb<pid>-<k>.
		Bridge: fmt.Sprintf("ksb%d-%d", pid, k%10),
		prefix: fmt.Sprintf("10.%d.%d.", 200+(pid+k)%50, (pid/50+k)%256),
	}
	nw.HostIP = nw.prefix + "1"
	for _, s := range [][]string{
		{"link", "add", nw.Bridge, "type", "bridge"},
		{"addr", "add", nw.HostIP + "/24", "dev", nw.Bridge},
		{"link", "set", nw.Bridge, "up"},
	} {
		if err := ipCmd(s...); err != nil {
			_ = nw.Close()
			return nil, err
		}
	}
	return nw, nil
}

// Add creates a namespace with loopback up, joined to the bridge.
func (nw *Network) Add() (*Netns, error) {
	n := int(nw.n.Add(1))
	if n > 250 {
		return nil, errors.New("network full")
	}
	ns := &Netns{
		Name:   fmt.Sprintf("%s-ns%d", nw.Bridge, n),
		HostIf: fmt.Sprintf("ks%sh%d", strings.TrimPrefix(nw.Bridge, "ksb"), n),
		HostIP: nw.HostIP,
		NSIP:   fmt.Sprintf("%s%d", nw.prefix, n+1),
	}
	peer := fmt.Sprintf("ks%sn%d", strings.TrimPrefix(nw.Bridge, "ksb"), n)
	steps := [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", ns.HostIf, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns.Name},
		{"link", "set", ns.HostIf, "master", nw.Bridge},
		{"link", "set", ns.HostIf, "up"},
		{"-n", ns.Name, "addr", "add", ns.NSIP + "/24", "dev", peer},
		{"-n", ns.Name, "link", "set", peer, "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			_ = ns.Close()
			return nil, err
		}
	}
	return ns, nil
}

// Close deletes the bridge.
func (nw *Network) Close() error { return ipCmd("link", "del", nw.Bridge) }

// Command runs bin inside the namespace.
func (n *Netns) Command(bin string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, bin}, args...)...)
}

// Cut takes the host end down: every connection to or from the namespace
// (host, bridge peers) stops; packets are dropped, nothing is reset.
func (n *Netns) Cut() error { return ipCmd("link", "set", n.HostIf, "down") }

// Heal brings the host end back up.
func (n *Netns) Heal() error { return ipCmd("link", "set", n.HostIf, "up") }

// Close deletes the veth pair and the namespace.
func (n *Netns) Close() error {
	err1 := ipCmd("link", "del", n.HostIf)
	err2 := ipCmd("netns", "del", n.Name)
	if err2 != nil {
		return err2
	}
	if err1 != nil && !strings.Contains(err1.Error(), "Cannot find device") {
		return err1
	}
	return nil
}
