package localenv_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/localenv"
)

// The run command brings up a cluster reachable through the kubeconfig it
// prints, and Ctrl-C (context cancel) stops it and removes the file.
func TestRunServesAClusterUntilCancelled(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "local", "kubeconfig")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	readyErr := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- localenv.Run(ctx, localenv.Config{
			KubeconfigPath: kubeconfig,
			Out:            &out,
			Ready: func(env localenv.Env) {
				readyErr <- useCluster(ctx, env.KubeconfigPath)
				cancel()
			},
		})
	}()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case err := <-readyErr:
		if err != nil {
			t.Fatalf("cluster from the printed kubeconfig: %v", err)
		}
	default:
		t.Fatal("Run returned without becoming ready")
	}
	if !strings.Contains(out.String(), kubeconfig) {
		t.Errorf("output does not name the kubeconfig path %s:\n%s", kubeconfig, out.String())
	}
	if _, err := os.Stat(kubeconfig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kubeconfig left behind after stop: %v", err)
	}
}

func useCluster(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	return err
}
