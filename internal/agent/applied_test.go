package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

// A deploy's result names the applied objects the session caches, at the
// resourceVersion the API server returned (the control plane waits for
// exactly those), and each goes ahead of the result (as an Applied change,
// or as its watch event when that was queued first: see
// TestAppliedSkipsWhatTheWatchQueued); an object in a namespace the
// account does not watch is in neither.
func TestResultNamesTheCachedObjectsItApplied(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"watched", "other"} {
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cp := startFlakyControlPlane(t)
	a, err := New(Config{
		ID: "agent-applied", Target: cp.addr, Log: testLogger(t),
		Accounts: []Account{{Name: "main", KubeconfigFile: cluster.KubeconfigPath,
			Kinds: []string{"ConfigMap"}, Namespaces: []string{"watched"}}},
		NewExecutor: OpsExecutors(ops.Options{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	s := cp.next(t)
	// The stream exists once the account watches.
	for watching := false; !watching; {
		select {
		case m := <-s.in:
			watching = m.GetAccountStatus().GetState() == kubesvcv1.AccountStatus_WATCHING
		case <-time.After(20 * time.Second):
			t.Fatal("the account did not report WATCHING within 20s")
		}
	}
	deploy := `{"account": "main", "moniker": {"app": "shop"}, "versioned": false, "manifests": [
	 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen", "namespace": "watched"}, "data": {"a": "1"}},
	 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unseen", "namespace": "other"}, "data": {"a": "1"}}]}`
	s.send <- &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_Operation{Operation: &kubesvcv1.Operation{
		Id: "task-1/0", Account: "main", Type: "deployManifest", Payload: []byte(deploy),
		DeadlineMs: time.Now().Add(time.Minute).UnixMilli()}}}

	var applied, watched []string
	var res *kubesvcv1.OperationResult
	timeout := time.After(20 * time.Second)
	for res == nil {
		select {
		case m := <-s.in:
			for _, c := range m.GetChanges().GetChanges() {
				if o := c.GetApplied(); o != nil {
					applied = append(applied, o.GetNamespace()+"/"+o.GetName()+"@"+o.GetResourceVersion())
				}
				if o := c.GetUpserted(); o != nil {
					watched = append(watched, o.GetNamespace()+"/"+o.GetName()+"@"+o.GetResourceVersion())
				}
			}
			res = m.GetOperationResult()
		case <-timeout:
			t.Fatal("no result within 20s")
		}
	}
	if !res.GetSuccess() {
		t.Fatalf("deploy failed: %s", res.GetError())
	}
	var payload struct {
		Manifests []struct {
			Metadata struct{ Name, Namespace, ResourceVersion string } `json:"metadata"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(res.GetPayload(), &payload); err != nil {
		t.Fatal(err)
	}
	rv := ""
	for _, m := range payload.Manifests {
		if m.Metadata.Name == "seen" {
			rv = m.Metadata.ResourceVersion
		}
	}
	if rv == "" {
		t.Fatalf("the result has no manifest seen with a resourceVersion: %s", res.GetPayload())
	}
	got := res.GetCached().GetObjects()
	if res.GetCached() == nil || len(got) != 1 || got[0].GetGroup() != "" || got[0].GetKind() != "ConfigMap" ||
		got[0].GetNamespace() != "watched" || got[0].GetName() != "seen" || got[0].GetResourceVersion() != rv {
		t.Errorf("cached: %v, want exactly ConfigMap watched/seen at %s", res.GetCached(), rv)
	}
	want := "watched/seen@" + rv
	ahead := slices.Concat(applied, watched)
	if !slices.Contains(ahead, want) || slices.ContainsFunc(ahead, func(s string) bool { return s != want }) {
		t.Errorf("ahead of the result: Applied %v, watch events %v; want only %s", applied, watched, want)
	}
}

// An applied object whose watch event (at its version or later) this
// session queued already gets no Applied change, but is still named in the
// result's cached objects; one the watch has not reached yet, or whose
// version is not a number, gets one.
func TestAppliedSkipsWhatTheWatchQueued(t *testing.T) {
	t.Parallel()
	a, err := New(Config{ID: "agent", Target: "127.0.0.1:1", Log: testLogger(t), Accounts: []Account{{Name: "main", KubeconfigFile: "unused"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(a, &kubesvcv1.Welcome{})
	key := &kubesvcv1.StreamKey{Account: "main", Resource: &kubesvcv1.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}}
	if err := s.emit(context.Background(), &kubesvcv1.Change{Stream: key, Change: &kubesvcv1.Change_Upserted{Upserted: &kubesvcv1.Object{
		Namespace: "default", Name: "other", ResourceVersion: "10"}}}); err != nil {
		t.Fatal(err)
	}
	cm := func(name, rv string) string {
		return `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "` + name + `", "namespace": "default", "resourceVersion": "` + rv + `"}}`
	}
	res := &kubesvcv1.OperationResult{Id: "t/0", Success: true,
		Payload: []byte(`{"manifests": [` + cm("old", "9") + `,` + cm("same", "10") + `,` + cm("new", "11") + `,` + cm("odd", "x1") + `]}`)}
	changes, cached := s.appliedChanges("main", res)
	var sent, named []string
	for _, c := range changes {
		sent = append(sent, c.GetApplied().GetName())
	}
	for _, o := range cached.GetObjects() {
		named = append(named, o.GetName()+"@"+o.GetResourceVersion())
	}
	if fmt.Sprint(sent) != "[new odd]" {
		t.Errorf("Applied changes for %v, want [new odd]", sent)
	}
	if fmt.Sprint(named) != "[old@9 same@10 new@11 odd@x1]" {
		t.Errorf("cached objects %v, want all four", named)
	}
}
