package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// The build script and tools/k8s/go.mod decide what gets built; the
// constants decide where the harness looks. They must agree.
func TestVersionsMatchBuildScript(t *testing.T) {
	gomod, err := os.ReadFile("../../tools/k8s/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("../../" + BuildCommand)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, want string
		src        []byte
		re         string
	}{
		{"k8s.io/kubernetes in tools/k8s/go.mod", KubernetesVersion, gomod, `(?m)^\s*k8s\.io/kubernetes (v\S+)`},
		{"go.etcd.io/etcd/server/v3 in tools/k8s/go.mod", EtcdVersion, gomod, `(?m)^\s*go\.etcd\.io/etcd/server/v3 (v\S+)`},
		{"KWOK_VERSION in the build script", KwokVersion, script, `(?m)^KWOK_VERSION=(v\S+)`},
	} {
		m := regexp.MustCompile(c.re).FindSubmatch(c.src)
		if m == nil {
			t.Errorf("%s: not found", c.what)
			continue
		}
		if string(m[1]) != c.want {
			t.Errorf("%s is %s, the harness expects %s", c.what, m[1], c.want)
		}
	}
	// Every k8s.io staging module must be pinned to the matching v0.x.
	staging := "v0" + KubernetesVersion[2:]
	for _, m := range regexp.MustCompile(`(?m)^\s*(k8s\.io/\S+) => \S+ (v\S+)`).FindAllSubmatch(gomod, -1) {
		if string(m[2]) != staging {
			t.Errorf("replace %s => %s, want %s", m[1], m[2], staging)
		}
	}
}

func TestStaleDirectoriesAreSwept(t *testing.T) {
	base := t.TempDir()
	dead := filepath.Join(base, dirPrefix+"dead-1")
	live := filepath.Join(base, dirPrefix+"live-1")
	young := filepath.Join(base, dirPrefix+"young-1") // no owner file yet
	for _, d := range []string{dead, live, young} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A pid far above pid_max's default cannot be running.
	os.WriteFile(filepath.Join(dead, ownerFile), []byte("2147483646"), 0o600)
	os.WriteFile(filepath.Join(live, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600)
	sweepStale(base)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("directory of a dead owner not swept: %v", err)
	}
	for _, d := range []string{live, young} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s swept: %v", d, err)
		}
	}
}
