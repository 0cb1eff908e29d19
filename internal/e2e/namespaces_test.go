package e2e

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// An account's namespaces are those its namespaces setting names, as
// Clouddriver answers (existing or not), not every namespace cached
// through its cluster-scoped kinds; without the setting, the cache's.
func TestAccountNamespacesFollowTheSetting(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{Name: "namespaces"})
	cs, _ := clients(t, cluster)
	createConfigMap(t, cs, "default", "here")
	cp := startControlPlane(t, cpOptions{dbPath: filepath.Join(t.TempDir(), "cp.db")})
	narrow := account("narrow", cluster)
	narrow.Namespaces = []string{"kube-public", "not-yet"}
	startAgent(t, cp.grpc, narrow, account("wide", cluster))
	cp.watching(t, "narrow")
	cp.watching(t, "wide")
	var nss []string
	if code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/narrow/namespaces", nil, &nss); err != nil || code != 200 || !slices.Equal(nss, []string{"kube-public", "not-yet"}) {
		t.Errorf("narrow: %d %s %v; want [kube-public not-yet]", code, body, err)
	}
	if code, body, err := getJSON(cp.http, "/agents/kubernetes/accounts/wide/namespaces", nil, &nss); err != nil || code != 200 || !slices.Contains(nss, "default") || !slices.Contains(nss, "kube-system") {
		t.Errorf("wide: %d %s %v; want the cluster's namespaces", code, body, err)
	}
}
