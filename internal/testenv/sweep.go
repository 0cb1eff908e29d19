package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	dirPrefix = "kubesvc-testenv-"
	ownerFile = "owner.pid"
)

// sweepStale removes cluster directories left in base by processes that no
// longer run (a test binary killed with SIGKILL cannot remove its own; its
// child processes died with it through the parent-death signal). Directories
// of live owners, or without an owner file yet, are left alone.
func sweepStale(base string) {
	if base == "" {
		base = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || ProcessRunning(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// ProcessRunning reports whether pid names a live, non-zombie process. Tests
// use it to check that nothing outlives a cluster.
func ProcessRunning(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: trust the signal
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}
