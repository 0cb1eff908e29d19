package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/store"
)

func testOperations(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	op := store.Operation{ID: "op-1", Account: "prod", Type: "deployManifest", ControlPlaneID: "cp-1", State: "RUNNING",
		Request: []byte(`{"manifests":[]}`), ReceivedAt: t0}
	if err := s.CreateOperation(ctx, op); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOperation(ctx, op); !errors.Is(err, store.ErrExists) {
		t.Errorf("repeated id: %v, want ErrExists", err)
	}
	op.AgentID, op.State, op.SentAt = "agent-1", "RUNNING", t0.Add(time.Millisecond)
	if err := s.UpdateOperation(ctx, op, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	op.State, op.Result, op.FinishedAt = "SUCCEEDED", []byte(`{"manifests":[1]}`), t0.Add(5*time.Millisecond)
	if err := s.UpdateOperation(ctx, op, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	// A late second outcome (e.g. a timeout racing the result) loses.
	late := op
	late.State, late.ErrorMessage = "FAILED", "timed out"
	if err := s.UpdateOperation(ctx, late, "RUNNING"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second outcome: %v, want ErrConflict", err)
	}
	got, err := s.GetOperation(ctx, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "SUCCEEDED" || got.AgentID != "agent-1" || string(got.Result) != `{"manifests":[1]}` ||
		!got.SentAt.Equal(t0.Add(time.Millisecond)) || !got.FinishedAt.Equal(t0.Add(5*time.Millisecond)) || got.Type != "deployManifest" {
		t.Errorf("stored operation: %+v", got)
	}
	if _, err := s.GetOperation(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing operation: %v", err)
	}
	for i, id := range []string{"op-2", "op-3"} {
		if err := s.CreateOperation(ctx, store.Operation{ID: id, State: "RUNNING", ReceivedAt: t0.Add(time.Duration(i+1) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListOperations(ctx, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "op-3" || list[1].ID != "op-2" {
		t.Errorf("newest two: %v", list)
	}
	if list, err := s.ListOperations(ctx, 2, 1); err != nil || len(list) != 2 || list[0].ID != "op-2" || list[1].ID != "op-1" {
		t.Errorf("two after the newest: %v %v", list, err)
	}
	if list, err := s.ListOperations(ctx, 2, 3); err != nil || len(list) != 0 {
		t.Errorf("past the end: %v %v", list, err)
	}
	n, err := s.PurgeOperations(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Errorf("purge: %d %v, want 2", n, err)
	}
	if list, _ := s.ListOperations(ctx, 10, 0); len(list) != 1 || list[0].ID != "op-3" {
		t.Errorf("after purge: %v", list)
	}

	// An error message with a NUL byte and invalid UTF-8 (as a cluster may
	// return) is stored, made valid, with its outcome.
	odd := store.Operation{ID: "op-odd", State: "RUNNING", ReceivedAt: t0}
	if err := s.CreateOperation(ctx, odd); err != nil {
		t.Fatal(err)
	}
	odd.State, odd.ErrorMessage, odd.FinishedAt = "FAILED", "bad \xff\x00 value", t0.Add(time.Second)
	if err := s.UpdateOperation(ctx, odd, "RUNNING"); err != nil {
		t.Fatalf("outcome with an odd error message: %v", err)
	}
	if got, err := s.GetOperation(ctx, "op-odd"); err != nil || got.State != "FAILED" || got.ErrorMessage != "bad \uFFFD value" {
		t.Errorf("stored %q (%s, %v), want the message made valid", got.ErrorMessage, got.State, err)
	}
}

// MarkOperationSent changes only the hop's columns, and only while the
// operation runs.
func testMarkOperationSent(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	op := store.Operation{ID: "op-m", Account: "prod", Type: "scaleManifest", ControlPlaneID: "cp-1", State: "RUNNING", ReceivedAt: t0}
	if err := s.CreateOperation(ctx, op); err != nil {
		t.Fatal(err)
	}
	op.Result = []byte(`{"results":[1]}`)
	if err := s.UpdateOperation(ctx, op, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkOperationSent(ctx, "op-m", "agent-9", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetOperation(ctx, "op-m")
	if err != nil || got.AgentID != "agent-9" || !got.SentAt.Equal(t0.Add(time.Second)) || string(got.Result) != `{"results":[1]}` {
		t.Fatalf("after MarkOperationSent: %+v %v", got, err)
	}
	if running, err := s.OperationsInState(ctx, "RUNNING"); err != nil || len(running) != 1 || running[0].ID != "op-m" {
		t.Fatalf("OperationsInState(RUNNING) = %v, %v; want op-m", running, err)
	}
	got.State, got.FinishedAt = "SUCCEEDED", t0.Add(2*time.Second)
	if err := s.UpdateOperation(ctx, got, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkOperationSent(ctx, "op-m", "agent-late", t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if running, err := s.OperationsInState(ctx, "RUNNING"); err != nil || len(running) != 0 {
		t.Fatalf("OperationsInState(RUNNING) after it finished = %v, %v", running, err)
	}
	if got, _ := s.GetOperation(ctx, "op-m"); got.AgentID != "agent-9" || got.State != "SUCCEEDED" {
		t.Fatalf("a late MarkOperationSent changed a finished operation: %+v", got)
	}
}
