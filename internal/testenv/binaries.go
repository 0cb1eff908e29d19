package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Pinned versions. They must match tools/k8s/go.mod and the KWOK_VERSION in
// scripts/k8s-binaries.sh; TestVersionsMatchBuildScript keeps them in step.
const (
	KubernetesVersion = "v1.36.3"
	EtcdVersion       = "v3.6.8"
	KwokVersion       = "v0.8.0"
)

// BuildCommand is the command that builds the binaries into BinDir.
const BuildCommand = "scripts/k8s-binaries.sh"

// Binary names under BinDir.
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	Kwok                  = "kwok"
)

// BinDir returns the per-version cache directory the binaries are built
// into: $KUBESVC_BIN_CACHE, else $XDG_CACHE_HOME/kubesvc, else
// ~/.cache/kubesvc, joined with a name made of the pinned versions.
func BinDir() (string, error) {
	root := os.Getenv("KUBESVC_BIN_CACHE")
	if root == "" {
		if xdg := os.Getenv("XDG_CACHE_HOME"); xdg != "" {
			root = filepath.Join(xdg, "kubesvc")
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("testenv: locate binary cache: %w", err)
			}
			root = filepath.Join(home, ".cache", "kubesvc")
		}
	}
	name := fmt.Sprintf("k8s-%s-etcd-%s-kwok-%s", KubernetesVersion, EtcdVersion, KwokVersion)
	return filepath.Join(root, name), nil
}

// ErrBinaryMissing is returned (wrapped) when a binary has not been built.
var ErrBinaryMissing = errors.New("binary missing")

// BinaryPath returns the path of the named binary, or an error wrapping
// ErrBinaryMissing that says which command builds it.
func BinaryPath(name string) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("testenv: %s %w at %s: build the Kubernetes binaries with %q from the repository root (about 5 minutes the first time)",
			name, ErrBinaryMissing, p, BuildCommand)
	}
	return p, nil
}
