package localenv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/localenv"
	"github.com/kubesvc/kubesvc/internal/testnet"
)

// The run command brings up a cluster reachable through the kubeconfig it
// prints, a control plane whose REST API shows the cluster's objects as
// streamed by the agent, and Ctrl-C (context cancel) stops it all and
// removes the kubeconfig.
func TestRunServesTheWholeSystemUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "local", "kubeconfig")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	readyErr := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- localenv.Run(ctx, localenv.Config{
			KubeconfigPath:  kubeconfig,
			DatabasePath:    filepath.Join(dir, "cp.db"),
			GRPCAddr:        freeAddr(t),
			HTTPAddr:        "127.0.0.1:0",
			AgentHealthAddr: "127.0.0.1:0",
			Out:             &out,
			Ready: func(env localenv.Env) {
				go func() {
					readyErr <- checkEnv(ctx, env)
					cancel()
				}()
			},
		})
	}()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case err := <-readyErr:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("Run returned without becoming ready")
	}
	for _, want := range []string{kubeconfig, "REST API:", "http://127.0.0.1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not mention %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(kubeconfig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kubeconfig left behind after stop: %v", err)
	}
}

func checkEnv(ctx context.Context, env localenv.Env) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", env.KubeconfigPath)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		return fmt.Errorf("cluster from the printed kubeconfig: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(env.RESTURL + "/cache/objects?account=" + localenv.AccountName + "&kind=Namespace&name=kube-system")
		if err == nil {
			var objs []map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&objs)
			resp.Body.Close()
			if len(objs) == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the REST API never showed namespace kube-system of account %s (last error %v)", localenv.AccountName, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The printed proxy URL reaches the cluster, read-only.
	proxied, err := kubernetes.NewForConfig(&rest.Config{Host: env.RESTURL + "/agents/kubernetes/accounts/" + localenv.AccountName + "/proxy"})
	if err != nil {
		return err
	}
	if _, err := proxied.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		return fmt.Errorf("the cluster through the API proxy: %w", err)
	}
	if _, err := proxied.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "w"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		return fmt.Errorf("a write through the local API proxy: %v, want Forbidden (read-only)", err)
	}
	return nil
}

// freeAddr is a loopback address reserved for the test (testnet.Reserve).
func freeAddr(t *testing.T) string { return testnet.Reserve(t) }
