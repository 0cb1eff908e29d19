package clusterharness

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AgentView is an agent as GET /armory/agents shows it.
type AgentView struct {
	AgentID          string   `json:"agentId"`
	ClouddriverID    string   `json:"clouddriverId"`
	Accounts         []string `json:"accounts"`
	AssignedAccounts []string `json:"assignedAccounts"`
	// LastConnection is when its session began (RFC 3339).
	LastConnection string `json:"lastConnection"`
}

// ReplicaView is a replica as GET /armory/clouddrivers shows it.
type ReplicaView struct {
	ID       string `json:"id"`
	BaseURL  string `json:"baseUrl"`
	Ready    bool   `json:"ready"`
	Agents   int    `json:"agents"`
	Accounts int    `json:"accounts"`
}

// Assignments asks the replica at base which agent caches each account,
// through which replica; it fails when an account is cached twice.
func Assignments(ctx context.Context, base string) (map[string]AgentView, error) {
	var agents []AgentView
	if err := GetJSON(ctx, base+"/armory/agents", &agents); err != nil {
		return nil, err
	}
	out := map[string]AgentView{}
	for _, a := range agents {
		for _, acct := range a.AssignedAccounts {
			if prev, dup := out[acct]; dup {
				return nil, fmt.Errorf("account %s cached by both %s and %s", acct, prev.AgentID, a.AgentID)
			}
			out[acct] = a
		}
	}
	return out, nil
}

// Served reports whether every account is cached by an agent connected to
// one of the replicas in live, as the replica at base sees it.
func Served(ctx context.Context, base string, accounts, live []string) (string, error) {
	asg, err := Assignments(ctx, base)
	if err != nil {
		return "", err
	}
	var missing []string
	for _, a := range accounts {
		v, ok := asg[a]
		if !ok || !slices.Contains(live, v.ClouddriverID) {
			missing = append(missing, fmt.Sprintf("%s (%s via %s)", a, v.AgentID, v.ClouddriverID))
		}
	}
	if len(missing) > 0 {
		return "not served: " + strings.Join(missing, ", "), nil
	}
	return "", nil
}

type cachedObject struct {
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	ResourceVersion string `json:"resourceVersion"`
}

// CompareConfigMaps compares, object by object, the ConfigMaps of
// namespace in the cluster with those the replica at base has cached for
// account; it returns the differences ("" when equal).
func (h *Harness) CompareConfigMaps(ctx context.Context, base, account, namespace string) (string, error) {
	truth, err := h.kube.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	want := map[string]string{}
	for _, cm := range truth.Items {
		want[cm.Name] = cm.ResourceVersion
	}
	var cached []cachedObject
	q := url.Values{"account": {account}, "kind": {"ConfigMap"}, "namespace": {namespace}}
	if err := GetJSON(ctx, base+"/cache/objects?"+q.Encode(), &cached); err != nil {
		return "", err
	}
	got := map[string]string{}
	for _, o := range cached {
		got[o.Name] = o.ResourceVersion
	}
	var diffs []string
	for name, rv := range want {
		if got[name] != rv {
			diffs = append(diffs, fmt.Sprintf("%s: cluster %s, cache %q", name, rv, got[name]))
		}
	}
	for name, rv := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: cached at %s but gone from the cluster", name, rv))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; "), nil
}
