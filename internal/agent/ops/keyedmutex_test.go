package ops

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A deploy waits for another deploy of the same versioned objects, not of
// others, and gives up when its context ends, holding nothing.
func TestVersionLocks(t *testing.T) {
	var k VersionLocks
	ctx := context.Background()
	unlockAB, err := k.lock(ctx, []string{"b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	unlockC, err := k.lock(ctx, []string{"c"})
	if err != nil {
		t.Fatalf("an unrelated key waited: %v", err)
	}
	unlockC()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := k.lock(short, []string{"c", "a"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held key: %v, want the context's error", err)
	}
	unlockAB()
	unlock, err := k.lock(ctx, []string{"a", "b", "c"})
	if err != nil {
		t.Fatalf("after release: %v (a lock was left held)", err)
	}
	unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.locks) != 0 {
		t.Errorf("%d lock entries left, want none", len(k.locks))
	}
}
