// Package benchproc runs the real binaries of a benchmark as child
// processes that die with the benchmark, and reads their peak memory.
package benchproc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process started by Start.
type Process struct {
	cmd  *exec.Cmd
	done chan error
	once sync.Once
}

// Start runs bin with args, its output on stderr; the child gets SIGKILL
// if the benchmark dies.
func Start(bin string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// Stop sends SIGTERM, waits up to 10 s, then kills. Safe to call twice.
func (p *Process) Stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// CPUTime is the CPU time the process has used so far, user and system,
// all threads (from /proc/PID/stat, in clock ticks of 10 ms).
func (p *Process) CPUTime() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", p.cmd.Process.Pid, s)
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// PeakRSS is the process's high-water resident set (VmHWM) in bytes.
func (p *Process) PeakRSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
}

// FreePort returns a loopback TCP port free right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor polls cond every 100 ms until it holds or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// WaitHTTP waits until url answers at all.
func WaitHTTP(url string, timeout time.Duration) error {
	return WaitFor(timeout, func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

// Binaries makes a working directory (named after prefix) and builds the
// agent and control plane binaries into it. The caller removes it.
func Binaries(prefix string) (string, error) {
	work, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	fmt.Println("building the agent and control plane binaries ...")
	if err := Build(work, "./cmd/agent", "./cmd/controlplane"); err != nil {
		os.RemoveAll(work)
		return "", err
	}
	return work, nil
}

// Build builds the packages' binaries into dir.
func Build(dir string, pkgs ...string) error {
	args := append([]string{"build", "-o", dir + "/"}, pkgs...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// Pct is the q quantile (0..1) of sorted durations v; 0 for none.
func Pct(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	return v[int(q*float64(len(v)-1))]
}

// MS formats d in milliseconds, two decimals.
func MS(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
