package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/kubesvc/kubesvc/internal/store"
)

// Streams lists every stream, syncing ones with an empty resource version,
// filtered by account.
func testStreams(t *testing.T, s store.Store) {
	ctx := context.Background()
	deps := stream("prod", deployments(), "")
	cms := stream("prod", configMaps(), "team1")
	cms.SelectorHash = "h1"
	other := stream("dev", configMaps(), "")
	apply(t, s, relist(deps, "5", obj(deps, "ns", "a", "1", nil))...)
	apply(t, s, relist(other, "6")...)
	apply(t, s, syncBegin(cms))
	got, err := s.Streams(ctx, []string{"prod"})
	if err != nil {
		t.Fatal(err)
	}
	positions := map[string]string{}
	for _, p := range got {
		positions[p.Stream.Account+"/"+p.Stream.Resource.Resource+"/"+p.Stream.Namespace] = p.ResourceVersion
		if p.Stream.Resource.Kind == "" || p.Stream.Resource.Version == "" {
			t.Errorf("stream %+v lacks its resource", p.Stream)
		}
		if p.Stream.Resource.Resource == "configmaps" && p.Stream.SelectorHash != "h1" {
			t.Errorf("stream %+v: selector hash %q, want h1", p.Stream, p.Stream.SelectorHash)
		}
	}
	want := map[string]string{"prod/deployments/": "5", "prod/configmaps/team1": ""}
	if len(positions) != len(want) {
		t.Fatalf("Streams(prod) = %v, want %v", positions, want)
	}
	for k, v := range want {
		if rv, ok := positions[k]; !ok || rv != v {
			t.Errorf("Streams(prod)[%s] = %q (present %v), want %q", k, rv, ok, v)
		}
	}
	all, err := s.Streams(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("Streams(all) returned %d streams, want 3", len(all))
	}
}

// AgentAccounts records, replaces and clears the accounts of an agent.
func testAgentAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	get := func(agent string) []string {
		t.Helper()
		got, err := s.AgentAccounts(ctx, agent)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := get("a1"); len(got) != 0 {
		t.Fatalf("unknown agent has accounts %v", got)
	}
	if err := s.SetAgentAccounts(ctx, "a1", []string{"prod", "dev", "prod"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAgentAccounts(ctx, "a2", []string{"qa"}); err != nil {
		t.Fatal(err)
	}
	if got := get("a1"); !slices.Equal(got, []string{"dev", "prod"}) {
		t.Errorf("a1 accounts %v, want [dev prod]", got)
	}
	if err := s.SetAgentAccounts(ctx, "a1", []string{"staging"}); err != nil {
		t.Fatal(err)
	}
	if got := get("a1"); !slices.Equal(got, []string{"staging"}) {
		t.Errorf("a1 accounts after replace %v, want [staging]", got)
	}
	if err := s.SetAgentAccounts(ctx, "a1", nil); err != nil {
		t.Fatal(err)
	}
	if got := get("a1"); len(got) != 0 {
		t.Errorf("a1 accounts after clear %v", got)
	}
	if got := get("a2"); !slices.Equal(got, []string{"qa"}) {
		t.Errorf("a2 accounts %v, want [qa] (untouched by a1's changes)", got)
	}
	if err := s.SetAgentAccounts(ctx, "", []string{"x"}); err == nil {
		t.Error("SetAgentAccounts with an empty agent id succeeded")
	}
}
