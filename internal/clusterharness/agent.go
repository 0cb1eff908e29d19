package clusterharness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kubesvc/kubesvc/internal/testnet"
)

// Agent is one agent process on the host.
type Agent struct {
	ID     string
	cmd    *exec.Cmd
	exited chan struct{}
	// release frees the port reserved for its health endpoint.
	release func()
}

// AccountSpec is one account of an agent: the harness's cluster restricted
// to a namespace and kinds.
type AccountSpec struct {
	Name, Namespace string
	Kinds           []string
}

// StartAgent runs an agent serving accounts through the load balancer
// (LB). Agents given the same accounts are replicas of one another.
func (h *Harness) StartAgent(id string, accounts []AccountSpec) (_ *Agent, err error) {
	target, err := h.LB()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.opts.Dir, id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	// Its health endpoint's port, reserved until the harness closes: no
	// other socket takes it before the agent listens.
	addr, release, err := testnet.ReserveAddr()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	_, port, _ := net.SplitHostPort(addr)
	backoff := ""
	if h.opts.AgentBackoff > 0 {
		backoff = fmt.Sprintf("  backoff: {baseDelay: %d, maxDelay: %d}\n", h.opts.AgentBackoff.Nanoseconds(), 10*h.opts.AgentBackoff.Nanoseconds())
	}
	var b strings.Builder
	fmt.Fprintf(&b, `agent: {id: %s, zoneId: harness}
clouddriver:
  grpc: %q
  insecure: true
  keepAliveHeartbeatSeconds: 1
  keepAliveTimeOutSeconds: 2
%sserver: {host: 127.0.0.1, port: %s}
logging: {level: info}
kubernetes:
  accounts:
`, id, target, backoff, port)
	for _, a := range accounts {
		kinds := a.Kinds
		if len(kinds) == 0 {
			kinds = []string{"configMap"}
		}
		fmt.Fprintf(&b, "  - {name: %s, kubeconfigFile: %q, namespaces: [%s], kinds: [%s]}\n",
			a.Name, h.opts.Kubeconfig, a.Namespace, strings.Join(kinds, ", "))
	}
	path := filepath.Join(dir, "agent.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	a := &Agent{ID: id, exited: make(chan struct{}), release: release}
	a.cmd = exec.Command(filepath.Join(h.opts.Bin, "agent"), "--config", path)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = a.cmd.Wait(); logf.Close(); close(a.exited) }()
	h.mu.Lock()
	h.agents = append(h.agents, a)
	h.mu.Unlock()
	return a, nil
}

// Kill sends SIGKILL to the agent and waits for it to exit.
func (a *Agent) Kill() error {
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-a.exited
	return nil
}

// Running reports whether the agent's process is alive.
func (a *Agent) Running() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}
