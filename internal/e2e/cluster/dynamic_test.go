package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/clusterharness"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// A dynamic account created and activated through a replica that holds no
// agent: the account command is forwarded to the replica holding the
// chosen agent, the account becomes ACTIVE, is cached by exactly one
// agent, and every replica reads it.
func TestDynamicAccountThroughAnyReplica(t *testing.T) {
	e := start(t, storetest.MySQL(), "")
	ctx := context.Background()
	var entry *clusterharness.Replica
	var views []clusterharness.ReplicaView
	if err := clusterharness.GetJSON(ctx, e.replicas[0].URL+"/armory/clouddrivers", &views); err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if v.Agents == 0 {
			for _, r := range e.replicas {
				if r.ID == v.ID {
					entry = r
				}
			}
		}
	}
	if entry == nil {
		t.Fatalf("every replica holds an agent: %+v", views)
	}
	if _, err := e.h.Kube().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-dyn"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	def := map[string]any{"name": "dyn", "kubeconfigFile": e.kubeconfig, "namespaces": []string{"team-dyn"}, "kinds": []string{"ConfigMap"}}
	if _, err := clusterharness.PostJSON(ctx, entry.URL+"/armory/accounts/dynamic", def, nil); err != nil {
		t.Fatal(err)
	}
	if code, err := clusterharness.PatchJSON(ctx, entry.URL+"/armory/accounts", []map[string]string{{"name": "dyn", "state": "ACTIVE"}}); err != nil {
		t.Fatalf("PATCH: %d %v", code, err)
	}
	e.eventually(60*time.Second, "dyn ACTIVE", func() string {
		var acct struct{ Status, ErrorMessage, AgentID string }
		if err := clusterharness.GetJSON(ctx, entry.URL+"/armory/accounts/dyn", &acct); err != nil {
			return err.Error()
		}
		if acct.Status != "ACTIVE" {
			return fmt.Sprintf("%s %s", acct.Status, acct.ErrorMessage)
		}
		return ""
	})
	e.accounts = append(e.accounts, "dyn")
	e.eventually(30*time.Second, "dyn cached once", func() string { return e.served(e.liveIDs()) })
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "team-dyn"}}
	if _, err := e.h.Kube().CoreV1().ConfigMaps("team-dyn").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "dyn's objects in every replica's cache", func() string {
		for _, r := range e.live() {
			diff, err := e.h.CompareConfigMaps(ctx, r.URL, "dyn", "team-dyn")
			if err != nil {
				return err.Error()
			}
			if diff != "" {
				return r.ID + ": " + diff
			}
		}
		return ""
	})
}
