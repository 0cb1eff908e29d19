package agent

import (
	"os"
	"strings"
	"testing"
)

// Not parallel: t.Setenv.
func TestDefaultZone(t *testing.T) {
	cases := []struct {
		name         string
		podName, ns  string
		id           string
		want         string
		unsetPodName bool
	}{
		{name: "outside Kubernetes: the id", id: "laptop", want: "laptop", unsetPodName: true},
		{name: "no namespace: the id even with a pod name", podName: "armory-agent-7c9f8d6b5-x2x7k", id: "armory-agent-7c9f8d6b5-x2x7k", want: "armory-agent-7c9f8d6b5-x2x7k"},
		{name: "deployment pod", podName: "armory-agent-7c9f8d6b5-x2x7k", ns: "spinnaker", id: "ignored", want: "armory-agent_spinnaker"},
		{name: "single-word deployment", podName: "agent-7c9f8d6b5-x2x7k", ns: "ops", id: "ignored", want: "agent_ops"},
		{name: "pod name from the id when POD_NAME is unset", ns: "ops", id: "kubesvc-agent-5d4f8-abcde", want: "kubesvc-agent_ops", unsetPodName: true},
		{name: "no dashes", podName: "agent", ns: "ops", want: "agent_ops"},
		{name: "leading dash is kept", podName: "-x", ns: "ops", want: "-x_ops"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", c.ns)
			t.Setenv("POD_NAME", c.podName)
			if c.unsetPodName {
				os.Unsetenv("POD_NAME") // restored by t.Setenv's cleanup
			}
			if got := defaultZone(c.id); got != c.want {
				t.Errorf("POD_NAME=%q POD_NAMESPACE=%q: defaultZone(%q) = %q, want %q", c.podName, c.ns, c.id, got, c.want)
			}
		})
	}
}

// Not parallel: t.Setenv.
func TestNewDerivesIDAndZoneFromThePod(t *testing.T) {
	t.Setenv("POD_NAME", "armory-agent-7c9f8d6b5-x2x7k")
	t.Setenv("POD_NAMESPACE", "spinnaker")
	a, err := New(Config{Target: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.ID != "armory-agent-7c9f8d6b5-x2x7k" || a.cfg.ZoneID != "armory-agent_spinnaker" {
		t.Errorf("id %q zone %q", a.cfg.ID, a.cfg.ZoneID)
	}
	a, err = New(Config{Target: "127.0.0.1:1", ID: "given", ZoneID: "zone"})
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.ID != "given" || a.cfg.ZoneID != "zone" {
		t.Errorf("configured id/zone overridden: %q %q", a.cfg.ID, a.cfg.ZoneID)
	}
}

func TestSetAccountsValidation(t *testing.T) {
	t.Parallel()
	a, err := New(Config{Target: "127.0.0.1:1", ID: "x", ZoneID: "z", Accounts: []Account{{Name: "keep"}}})
	if err != nil {
		t.Fatal(err)
	}
	<-a.changed // drain New's signal
	cases := []struct {
		name     string
		accounts []Account
		wantKey  string
		wantText string
	}{
		{"empty first name", []Account{{Name: ""}}, "kubernetes.accounts[0].name", "required"},
		{"empty later name", []Account{{Name: "a"}, {Name: "b"}, {Name: ""}}, "kubernetes.accounts[2].name", "required"},
		{"duplicate", []Account{{Name: "a"}, {Name: "b"}, {Name: "a"}}, "kubernetes.accounts[2].name", `duplicate account "a"`},
		{"duplicate adjacent", []Account{{Name: "x"}, {Name: "x"}}, "kubernetes.accounts[1].name", `duplicate account "x"`},
	}
	for _, c := range cases {
		err := a.SetAccounts(c.accounts)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.wantKey+":") || !strings.Contains(err.Error(), c.wantText) {
			t.Errorf("%s: error %q, want it to name %q and say %q", c.name, err, c.wantKey, c.wantText)
		}
	}
	// A rejected set changes nothing and wakes nobody.
	if got := a.snapshot(); len(got) != 1 || got["keep"].Name != "keep" {
		t.Errorf("accounts after rejected sets: %v", got)
	}
	select {
	case <-a.changed:
		t.Error("a rejected SetAccounts signalled a change")
	default:
	}

	// New validates the same way.
	_, err = New(Config{Target: "127.0.0.1:1", ID: "x", ZoneID: "z", Accounts: []Account{{Name: "a"}, {Name: "a"}}})
	if err == nil || !strings.Contains(err.Error(), "kubernetes.accounts[1].name") {
		t.Errorf("New with duplicate accounts: %v", err)
	}
}

func TestSetAccountsReplacesAndForgetsInfos(t *testing.T) {
	t.Parallel()
	a, err := New(Config{Target: "127.0.0.1:1", ID: "x", ZoneID: "z", Accounts: []Account{{Name: "a"}, {Name: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	a.rememberInfo(Account{Name: "a"}.info())
	a.rememberInfo(Account{Name: "b"}.info())
	a.rememberInfo(Account{Name: "unknown"}.info()) // not served: ignored
	a.mu.Lock()
	a.executors["a"], a.executors["b"] = builtFor[Executor]{acct: Account{Name: "a"}}, builtFor[Executor]{acct: Account{Name: "b"}}
	a.mu.Unlock()
	if err := a.SetAccounts([]Account{{Name: "b"}, {Name: "c"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.changed:
	default:
		t.Error("SetAccounts did not signal the change")
	}
	a.mu.Lock()
	_, hasA := a.infos["a"]
	_, hasB := a.infos["b"]
	_, hasUnknown := a.infos["unknown"]
	_, execA := a.executors["a"]
	_, execB := a.executors["b"]
	a.mu.Unlock()
	if hasA || !hasB || hasUnknown {
		t.Errorf("infos after replacing a with c: a=%v b=%v unknown=%v", hasA, hasB, hasUnknown)
	}
	if execA || !execB {
		t.Errorf("executors after replacing a with c: a=%v b=%v, want only b's kept", execA, execB)
	}
	if got := a.snapshot(); len(got) != 2 || got["b"].Name != "b" || got["c"].Name != "c" {
		t.Errorf("accounts: %v", got)
	}
}

func TestHelloListsAccountsSorted(t *testing.T) {
	t.Parallel()
	kubeconfig := []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://kube.example.invalid:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`)
	a, err := New(Config{Target: "127.0.0.1:1", ID: "agent-1", ZoneID: "zone-1", Version: "1.2.3", Accounts: []Account{
		{Name: "zeta", Kubeconfig: kubeconfig, Kinds: []string{"pod"}},
		{Name: "alpha", Kubeconfig: kubeconfig, Namespaces: []string{"n1"}},
		{Name: "mid"}, // no credentials: no host
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := a.hello()
	if h.GetAgentId() != "agent-1" || h.GetZoneId() != "zone-1" || h.GetVersion() != "1.2.3" || h.GetProtocol() != 1 || !h.GetDynamicAccountsEnabled() {
		t.Errorf("hello header: %v", h)
	}
	var names []string
	for _, info := range h.GetAccounts() {
		names = append(names, info.GetName())
	}
	if strings.Join(names, ",") != "alpha,mid,zeta" {
		t.Fatalf("accounts %v, want alpha,mid,zeta", names)
	}
	if got := h.GetAccounts()[0]; got.GetApiHost() != "https://kube.example.invalid:6443" || strings.Join(got.GetNamespaces(), ",") != "n1" {
		t.Errorf("alpha: %v", got)
	}
	if got := h.GetAccounts()[1]; got.GetApiHost() != "" {
		t.Errorf("mid has a host: %v", got)
	}
	// Facts learnt on an earlier session replace the configured ones.
	learnt := Account{Name: "zeta", Kinds: []string{"pod"}}.info()
	learnt.ApiHost, learnt.KubernetesVersion = "https://learnt:443", "v1.36.3"
	a.rememberInfo(learnt)
	if got := a.hello().GetAccounts()[2]; got.GetApiHost() != "https://learnt:443" || got.GetKubernetesVersion() != "v1.36.3" {
		t.Errorf("zeta after rememberInfo: %v", got)
	}
}

// An agent id the control plane would refuse in the hello is refused at
// start, whether set or derived from the pod or host name.
func TestAgentIDMustBeAKey(t *testing.T) {
	_, err := New(Config{Target: "127.0.0.1:1", ID: "team a/agent"})
	if err == nil || !strings.Contains(err.Error(), `agent.id "team a/agent": only printable ASCII`) {
		t.Errorf("New with an id holding a space and '/': %v", err)
	}
	t.Setenv("POD_NAME", strings.Repeat("p", 201))
	if _, err := New(Config{Target: "127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "longer than 200 bytes (from $POD_NAME") {
		t.Errorf("New with a 201-byte pod name: %v", err)
	}
}
