package testenv

import (
	"context"
	"testing"
)

// StartForTest starts a cluster for t and stops it when t and its subtests
// finish, also when the test fails or panics. If the test failed, the last
// lines of each process log are written to the test log first. When the
// binaries are missing the test fails with the command that builds them.
func StartForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Name == "" {
		opts.Name = sanitize(t.Name())
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.mu.Lock()
			for _, p := range c.procs {
				t.Logf("testenv %s: last lines of %s:\n%s", c.Name, p.logPath, p.logTail(15))
			}
			c.mu.Unlock()
		}
		if err := c.Stop(); err != nil {
			t.Errorf("testenv: stop %s: %v", c.Name, err)
		}
	})
	return c
}

// sanitize turns a test name into something usable in a directory name.
func sanitize(name string) string {
	b := []byte(name)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-':
		default:
			b[i] = '-'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}
