package credentials

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsNeverContainSecrets feeds kubeconfigs holding a sentinel token
// through every path of the package that can fail, in every field and in
// every broken shape we know YAML and JSON decoders to quote from, and
// checks that no error message (nor Redact, nor printed Credentials)
// contains the token.
func TestErrorsNeverContainSecrets(t *testing.T) {
	const (
		sentinel = "SENTINEL-leak-4f9a1c"
		number   = "918273645546372819"
	)
	secrets := []string{sentinel, number}
	valid := testKubeconfig(sentinel)
	head := "apiVersion: v1\nkind: Config\n"
	broken := []string{
		head + "users:\n- name: u\n  user:\n    token: [" + sentinel + "\n",
		head + "users:\n- name: u\n  user:\n    token: \"" + sentinel + "\n",
		head + "users:\n- name: u\n  user:\n    token: *" + sentinel + "\n",
		head + "users:\n- name: u\n  user:\n    token: !!" + sentinel + " x\n",
		head + "users:\n- name: u\n  user:\n    token: " + number + "\n",
		head + "users:\n- name: u\n  user:\n    token: {" + sentinel + ": 1}\n",
		head + "users:\n- name: u\n  user:\n    auth-provider:\n      name: x\n      config:\n        " + sentinel + ": [1]\n",
		head + "users:\n- name: u\n  user:\n    exec:\n      env: " + sentinel + "\n",
		head + "users:\n- name: u\n  user:\n    " + sentinel + ": [\n",
		"{" + sentinel + ": x}: y\n",
		"{[" + sentinel + "]: x}\n",
		"apiVersion: v1\nkind: " + sentinel + "\n",
		"apiVersion: " + sentinel + "\nkind: Config\n",
		"- " + sentinel + "\n",
		"\t" + sentinel + ": x\n",
		"a: b\n c: " + sentinel + ": d\n",
		`{"apiVersion": "v1", "users": [{"name": "` + sentinel + `" "x"}]}`,
		`{"apiVersion": "v1", "users": [{"name": "u", "user": {"token": ` + number + `}}]}`,
		`{"apiVersion": "v1", "current-context": ["` + sentinel + `"]}`,
		strings.Replace(valid, "current-context: ctx1", "current-context: "+sentinel, 1),
		strings.Replace(valid, "    cluster: c1\n    user: u1\n- name: ctx2", "    cluster: "+sentinel+"\n    user: u1\n- name: ctx2", 1),
		strings.Replace(valid, "    cluster: c1\n    user: u1\n- name: ctx2", "    cluster: c1\n    user: "+sentinel+"\n- name: ctx2", 1),
		strings.Replace(valid, "contexts:", "contexts: "+sentinel+"\nx:", 1),
		strings.Replace(valid, "server: https://127.0.0.1:6443", "insecure-skip-tls-verify: "+sentinel, 1),
		base64.StdEncoding.EncodeToString([]byte(valid)),
		"\xff\xfe" + sentinel,
		strings.Repeat("x", DefaultMaxBytes) + sentinel,
	}

	var msgs []string
	collect := func(err error) {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	dir := t.TempDir()
	key := newKey(t)
	sealer := mustSealer(t, key)
	r := &Resolver{Sealer: sealer, Namespace: "spinnaker"}
	ctx := t.Context()

	// A bare token is content only: in a name or path position it is
	// indistinguishable from a name, and printed like one.
	bare := []string{sentinel, number}
	for i, content := range append(append(broken, valid), bare...) {
		isBare := i >= len(broken)+1
		path := filepath.Join(dir, fmt.Sprintf("kc-%d", i))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		sealed, err := sealer.Seal([]byte(content))
		if err != nil {
			t.Fatal(err)
		}
		sources := []Source{
			{KubeconfigContents: content},
			{KubeconfigContents: content, Context: "nope"},
			{KubeconfigContents: sealed},
			{KubeconfigContents: sealed[:len(sealed)-4] + "AAA="},
			{KubeconfigFile: path},
			{KubeconfigFile: path, Context: "ctx9"},
			{KubeconfigContents: content, KubeconfigFile: path},
		}
		if !isBare {
			sources = append(sources, []Source{
				{KubeconfigFile: content},
				{KubeconfigAgent: content},
				{KubeconfigContents: content, ServiceAccount: true, KubeconfigAgent: content},
				{KubeconfigContents: "encryptedFile:" + content},
				{KubeconfigFile: "encrypted:k8s!n:" + content},
				{KubeconfigContents: "encrypted:k8s!n:a!k:b!ns:" + content},
				{KubeconfigAgent: "encryptedFile:k8s!k:" + content},
			}...)
		}
		for _, src := range sources {
			_, err := r.Resolve(ctx, src)
			collect(err)
			_, err = (&Resolver{MaxBytes: 64}).Resolve(ctx, src)
			collect(err)
			_, err = (&Resolver{}).Resolve(ctx, src)
			collect(err)
			_, err = (*Sealer)(nil).SealSource(src)
			collect(err)
			_, err = sealer.SealSource(src)
			collect(err)
		}
		_, err = mustSealer(t, newKey(t)).Open(sealed)
		collect(err)
		os.WriteFile(path, []byte(content), 0o600)
		_, err = ReadKeyFile(path)
		collect(err)
		msgs = append(msgs, Redact(sealed))
		if isBare {
			continue
		}
		_, err = sealer.Open(strings.Replace(sealed, ":v1:", ":"+content+":", 1))
		collect(err)
		_, err = sealer.Open("sealed:v1:" + content)
		collect(err)
		_, err = ParseRef("encrypted:" + content)
		collect(err)
		_, err = ParseKey(content)
		collect(err)
		msgs = append(msgs, Redact(content), Redact("/etc/"+content))
	}
	if len(msgs) < 500 {
		t.Fatalf("only %d messages collected", len(msgs))
	}
	for _, m := range msgs {
		assertNoSecret(t, "message", m, secrets...)
	}
	t.Logf("%d messages checked, e.g.:\n%s", len(msgs), strings.Join(msgs[:12], "\n"))
}
