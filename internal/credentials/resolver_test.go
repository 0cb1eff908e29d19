package credentials

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestResolveFile(t *testing.T) {
	dir := t.TempDir()
	kc := testKubeconfig("t0ken")
	path := filepath.Join(dir, "kubeconfig.yaml")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	var r Resolver
	c, err := r.Resolve(t.Context(), Source{KubeconfigFile: "  " + path + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindKubeconfig || c.Field != FieldKubeconfigFile || c.Origin != "file "+path || string(c.Kubeconfig) != kc {
		t.Fatalf("Resolve = %v", c)
	}
	if dec, _ := base64.StdEncoding.DecodeString(c.KubeconfigBase64()); string(dec) != kc {
		t.Fatal("KubeconfigBase64 does not decode to the kubeconfig")
	}
	if _, err := r.Resolve(t.Context(), Source{KubeconfigFile: path, Context: "ctx2"}); err != nil {
		t.Fatalf("context ctx2: %v", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: v1\nusers: [\n"), 0o600)
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, bytes.Repeat([]byte("#"), 2<<20), 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src     Source
		want    string
		wantErr error
	}{
		{Source{KubeconfigFile: filepath.Join(dir, "missing")}, "kubeconfigFile (file " + filepath.Join(dir, "missing") + "): stat: no such file or directory", fs.ErrNotExist},
		{Source{KubeconfigFile: dir}, "kubeconfigFile (file " + dir + "): is a directory", nil},
		{Source{KubeconfigFile: fifo}, "is not a regular file but a named pipe", nil},
		{Source{KubeconfigFile: big}, "larger than 1048576 bytes", nil},
		{Source{KubeconfigFile: empty}, "kubeconfigFile (file " + empty + "): invalid kubeconfig: empty", ErrInvalidKubeconfig},
		{Source{KubeconfigFile: bad}, "kubeconfigFile (file " + bad + "): invalid kubeconfig: YAML syntax error at line 2: did not find expected node content", ErrInvalidKubeconfig},
		{Source{KubeconfigFile: path, Context: "nope"}, `context "nope" (the account's context field) is not defined`, ErrInvalidKubeconfig},
		{Source{KubeconfigFile: kc}, "kubeconfigFile (inline, " + fmt.Sprint(len(strings.TrimSpace(kc))) + " bytes): holds kubeconfig contents, not a path or secret reference; send contents in kubeconfigContents", nil},
		{Source{KubeconfigFile: "encryptedFile:k8s!n:kc"}, "kubeconfigFile: invalid secret reference encryptedFile:k8s!n:kc: missing k:KEY", ErrInvalidRef},
	} {
		_, err := r.Resolve(t.Context(), tc.src)
		checkErr(t, err, tc.want, tc.wantErr)
	}
}

func TestResolveInline(t *testing.T) {
	var r Resolver
	kc := testKubeconfig("t0ken")
	c, err := r.Resolve(t.Context(), Source{KubeconfigContents: kc})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindKubeconfig || c.Field != FieldKubeconfigContents || c.Origin != fmt.Sprintf("inline, %d bytes", len(kc)) || string(c.Kubeconfig) != kc {
		t.Fatalf("Resolve = %v", c)
	}
	_, err = r.Resolve(t.Context(), Source{KubeconfigContents: "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: [x\n"})
	checkErr(t, err, "kubeconfigContents (inline, 67 bytes): invalid kubeconfig: YAML syntax error at line 6: did not find expected ',' or ']'", ErrInvalidKubeconfig)
	_, err = (&Resolver{MaxBytes: 100}).Resolve(t.Context(), Source{KubeconfigContents: kc})
	checkErr(t, err, fmt.Sprintf("kubeconfigContents (inline, %d bytes): larger than 100 bytes", len(kc)), nil)
	_, err = r.Resolve(t.Context(), Source{KubeconfigContents: base64.StdEncoding.EncodeToString([]byte(kc))})
	checkErr(t, err, "the value is base64-encoded; give the kubeconfig YAML itself", ErrInvalidKubeconfig)
	_, err = r.Resolve(t.Context(), Source{KubeconfigContents: "/home/me/.kube/config"})
	checkErr(t, err, "the value looks like a file path; use kubeconfigFile for paths", ErrInvalidKubeconfig)
	// A reference in kubeconfigContents is resolved, not parsed as YAML.
	_, err = r.Resolve(t.Context(), Source{KubeconfigContents: "encrypted:k8s!n:kc!k:config"})
	checkErr(t, err, "kubeconfigContents (encrypted:k8s!n:kc!k:config): no Kubernetes client is configured", nil)
}

func TestResolveSealed(t *testing.T) {
	key := newKey(t)
	s := mustSealer(t, key)
	kc := testKubeconfig("t0ken")
	stored, err := s.SealSource(Source{KubeconfigContents: kc})
	if err != nil {
		t.Fatal(err)
	}
	r := Resolver{Sealer: s}
	c, err := r.Resolve(t.Context(), stored)
	if err != nil {
		t.Fatal(err)
	}
	wantOrigin := fmt.Sprintf("sealed with key %s, %d bytes", KeyID(key), len(stored.KubeconfigContents))
	if string(c.Kubeconfig) != kc || c.Origin != wantOrigin {
		t.Fatalf("Resolve(sealed) = %v, want origin %q", c, wantOrigin)
	}
	other := newKey(t)
	_, err = (&Resolver{Sealer: mustSealer(t, other)}).Resolve(t.Context(), stored)
	// The key id once, and what to do.
	checkErr(t, err, fmt.Sprintf("kubeconfigContents (sealed, %d bytes): sealed with key %s, not the one configured here (%s); "+
		"the key (kubesvc.dynamicAccounts.encryptionKey or encryptionKeyFile) must be the same on every control-plane replica",
		len(stored.KubeconfigContents), KeyID(key), KeyID(other)), nil)
	if n := strings.Count(err.Error(), KeyID(key)); n != 1 {
		t.Errorf("%v: the key id %d times, want once", err, n)
	}
	_, err = (&Resolver{}).Resolve(t.Context(), stored)
	checkErr(t, err, "sealed with key "+KeyID(key)+", and no key is configured here", nil)
	tampered := stored
	tampered.KubeconfigContents = stored.KubeconfigContents[:len(stored.KubeconfigContents)-8] + "AAAAAAA="
	_, err = r.Resolve(t.Context(), tampered)
	checkErr(t, err, "failed authentication", ErrTampered)
}

func TestResolveAgentAndServiceAccount(t *testing.T) {
	var r Resolver
	for _, v := range []string{"/home/agent/.kube/prod", "encryptedFile:k8s!n:kubeconfig-agent!k:config!ns:spinnaker"} {
		c, err := r.Resolve(t.Context(), Source{KubeconfigAgent: v, Context: "prod"})
		if err != nil {
			t.Fatal(err)
		}
		if c.Kind != KindAgentKubeconfig || c.AgentKubeconfig != v || c.Kubeconfig != nil || c.Field != FieldKubeconfigAgent {
			t.Fatalf("Resolve(kubeconfigAgent %s) = %#v", v, c)
		}
		if got := c.String(); got != "kubeconfigAgent ("+v+"): resolved by the agent" {
			t.Errorf("String = %q", got)
		}
	}
	_, err := r.Resolve(t.Context(), Source{KubeconfigAgent: "encryptedFile:k8s!k:config"})
	checkErr(t, err, "kubeconfigAgent: invalid secret reference encryptedFile:k8s!k:config: missing n:SECRET_NAME", ErrInvalidRef)
	_, err = r.Resolve(t.Context(), Source{KubeconfigAgent: testKubeconfig("x")})
	checkErr(t, err, "kubeconfigAgent (inline, 271 bytes): holds kubeconfig contents, not a path or secret reference on the agent", nil)

	c, err := r.Resolve(t.Context(), Source{ServiceAccount: true})
	if err != nil || c.Kind != KindServiceAccount || c.Field != FieldServiceAccount || c.Kubeconfig != nil {
		t.Fatalf("Resolve(serviceAccount) = %v, %v", c, err)
	}
	_, err = r.Resolve(t.Context(), Source{ServiceAccount: true, Context: "x"})
	checkErr(t, err, "context: applies to kubeconfigs only, not to serviceAccount", nil)
}

func TestResolveExactlyOne(t *testing.T) {
	var r Resolver
	_, err := r.Resolve(t.Context(), Source{})
	checkErr(t, err, "no credentials: set one of kubeconfigFile, kubeconfigContents, kubeconfigAgent or serviceAccount", ErrNoCredentials)
	_, err = r.Resolve(t.Context(), Source{KubeconfigFile: " ", KubeconfigContents: "\n", Context: "x"})
	checkErr(t, err, "no credentials", ErrNoCredentials)
	_, err = r.Resolve(t.Context(), Source{KubeconfigFile: "/a", ServiceAccount: true})
	checkErr(t, err, "set exactly one of kubeconfigFile, kubeconfigContents, kubeconfigAgent or serviceAccount; kubeconfigFile and serviceAccount are set", ErrAmbiguousCredentials)
	_, err = r.Resolve(t.Context(), Source{KubeconfigFile: "/a", KubeconfigContents: testKubeconfig("x"), KubeconfigAgent: "/b", ServiceAccount: true})
	checkErr(t, err, "kubeconfigFile and kubeconfigContents and kubeconfigAgent and serviceAccount are set", ErrAmbiguousCredentials)
}

func TestResolveContext(t *testing.T) {
	var r Resolver
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, src := range []Source{{KubeconfigContents: testKubeconfig("x")}, {ServiceAccount: true}} {
		if _, err := r.Resolve(ctx, src); !errors.Is(err, context.Canceled) {
			t.Errorf("Resolve with a canceled context: %v", err)
		}
	}

	// An API server that never answers: the deadline ends the read.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	r = Resolver{Client: kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL}), Namespace: "spinnaker"}
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Resolve(ctx, Source{KubeconfigFile: "encryptedFile:k8s!n:kc!k:config"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resolve against a hung server: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Resolve took %v after a 200ms deadline", d)
	}
	if !strings.HasPrefix(err.Error(), "kubeconfigFile (encryptedFile:k8s!n:kc!k:config): reading secret spinnaker/kc: ") {
		t.Errorf("error = %q", err)
	}
}

func TestCredentialsPrintRedacted(t *testing.T) {
	const secret = "SENTINEL-print-5eb7"
	c, err := (&Resolver{}).Resolve(t.Context(), Source{KubeconfigContents: testKubeconfig(secret)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("resolved", "credentials", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("resolved", "credentials", c, "ptr", &c)
	wrapped := struct {
		Name  string
		Creds Credentials
	}{"acc", c}
	out := fmt.Sprintf("%v %+v %#v %s %v %+v", c, c, c, c, wrapped, wrapped) + buf.String()
	assertNoSecret(t, "printed credentials", out, secret)
	if !strings.Contains(out, "kubeconfigContents (inline, 290 bytes): kubeconfig, 290 bytes") {
		t.Errorf("printed credentials: %s", out)
	}
}

// checkErr checks that err contains want and, if wantErr is set, wraps it;
// every Resolve error is an *Error.
func checkErr(t *testing.T, err error, want string, wantErr error) {
	t.Helper()
	if err == nil {
		t.Errorf("no error, want %q", want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	if wantErr != nil && !errors.Is(err, wantErr) {
		t.Errorf("error %q does not wrap %v", err, wantErr)
	}
	if _, ok := errors.AsType[*Error](err); !ok {
		t.Errorf("error %q is a %T, not an *Error", err, err)
	}
}
