package testenv_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

func clientset(t *testing.T, c *testenv.Cluster) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestTwoClustersAreIsolated(t *testing.T) {
	t.Parallel()
	var (
		wg     sync.WaitGroup
		a, b   *testenv.Cluster
		aE, bE error
	)
	ctx := context.Background()
	wg.Go(func() { a, aE = testenv.Start(ctx, testenv.Options{Name: "iso-a"}) })
	wg.Go(func() { b, bE = testenv.Start(ctx, testenv.Options{Name: "iso-b"}) })
	wg.Wait()
	for _, c := range []*testenv.Cluster{a, b} {
		if c != nil {
			t.Cleanup(func() { c.Stop() })
		}
	}
	if aE != nil || bE != nil {
		t.Fatalf("start: %v / %v", aE, bE)
	}
	if a.Host == b.Host || a.Dir == b.Dir {
		t.Fatalf("clusters share host or dir: %s %s", a.Host, b.Host)
	}

	csA := clientset(t, a)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-a"}, Data: map[string]string{"k": "v"}}
	if _, err := csA.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The kubeconfig file of b works on its own and does not see a's object.
	cfgB, err := clientcmd.BuildConfigFromFlags("", b.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	csB, err := kubernetes.NewForConfig(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := csB.CoreV1().ConfigMaps("default").Get(ctx, "only-in-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("cluster b: want NotFound for a's ConfigMap, got %v", err)
	}
	got, err := csA.CoreV1().ConfigMaps("default").Get(ctx, "only-in-a", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("cluster a: get ConfigMap: %v %v", got, err)
	}
	v, err := csB.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != testenv.KubernetesVersion {
		t.Errorf("server version %q, want %q", v.GitVersion, testenv.KubernetesVersion)
	}
}

func TestWatchReceivesEvent(t *testing.T) {
	t.Parallel()
	c := testenv.StartForTest(t, testenv.Options{})
	cs := clientset(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	w, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=watched"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		got, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != watch.Added || !ok || got.Name != "watched" {
			t.Fatalf("event %s %T, want ADDED ConfigMap watched", ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event before the deadline")
	}
}

func TestControllerManagerCreatesReplicaSet(t *testing.T) {
	t.Parallel()
	c := testenv.StartForTest(t, testenv.Options{ControllerManager: true})
	cs := clientset(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := cs.AppsV1().ReplicaSets("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case ev := <-w.ResultChan():
			rs, ok := ev.Object.(*appsv1.ReplicaSet)
			if !ok || len(rs.OwnerReferences) == 0 || rs.OwnerReferences[0].Name != "web" {
				continue
			}
			if *rs.Spec.Replicas != 2 {
				t.Fatalf("ReplicaSet %s has %d replicas, want 2", rs.Name, *rs.Spec.Replicas)
			}
			return
		case <-ctx.Done():
			t.Fatal("kube-controller-manager created no ReplicaSet for the Deployment")
		}
	}
}

func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	c, err := testenv.Start(context.Background(), testenv.Options{Name: "stop", ControllerManager: true})
	if err != nil {
		t.Fatal(err)
	}
	pids := c.PIDs()
	if len(pids) != 3 {
		t.Errorf("want 3 processes (etcd, kube-apiserver, kube-controller-manager), got %v", pids)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still running after Stop", pid)
		}
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s still there after Stop: %v", c.Dir, err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestMissingBinariesNameTheBuildCommand(t *testing.T) {
	t.Setenv("KUBESVC_BIN_CACHE", t.TempDir())
	_, err := testenv.Start(context.Background(), testenv.Options{})
	if !errors.Is(err, testenv.ErrBinaryMissing) {
		t.Fatalf("want ErrBinaryMissing, got %v", err)
	}
	if !strings.Contains(err.Error(), testenv.BuildCommand) {
		t.Fatalf("error does not name %q: %v", testenv.BuildCommand, err)
	}
}

// TestChildrenDieWithTheTestBinary runs this test binary again as a helper
// that starts a cluster, reports its process ids and directory, and then
// dies: by a panic in its test (cleanups run) or by SIGKILL (nothing runs).
// Either way no etcd or kube-apiserver may outlive it.
func TestChildrenDieWithTheTestBinary(t *testing.T) {
	for _, mode := range []string{"panic", "sigkill"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			report := filepath.Join(t.TempDir(), "report")
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTENV_HELPER="+mode, "TESTENV_REPORT="+report)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var lines []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if mode == "sigkill" && sc.Text() == "HELPER READY" {
					_ = cmd.Process.Kill()
				}
			}
			_ = cmd.Wait()
			data, err := os.ReadFile(report)
			if err != nil {
				t.Fatalf("helper wrote no report (%v); output:\n%s", err, strings.Join(lines, "\n"))
			}
			fields := strings.Fields(string(data))
			dir, pids := fields[0], fields[1:]
			if len(pids) < 2 {
				t.Fatalf("report %q lists too few processes", data)
			}
			deadline := time.Now().Add(15 * time.Second)
			for _, s := range pids {
				pid, _ := strconv.Atoi(s)
				for alive(pid) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if alive(pid) {
					t.Errorf("process %d outlived the test binary (%s)", pid, mode)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if mode == "panic" {
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("directory %s still there after the panicking test: %v", dir, err)
				}
			}
			// The SIGKILL case cannot clean its directory; the next Start in
			// the same base directory sweeps it (see TestStaleDirectoriesAreSwept).
			os.RemoveAll(dir)
		})
	}
}

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("TESTENV_HELPER")
	if mode == "" {
		t.Skip("helper for TestChildrenDieWithTheTestBinary")
	}
	c := testenv.StartForTest(t, testenv.Options{Name: "helper"})
	var b strings.Builder
	b.WriteString(c.Dir)
	for _, pid := range c.PIDs() {
		b.WriteString(" " + strconv.Itoa(pid))
	}
	if err := os.WriteFile(os.Getenv("TESTENV_REPORT"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("HELPER READY\n")
	if mode == "panic" {
		panic("helper panics on purpose")
	}
	time.Sleep(time.Minute) // killed by the parent
}

func alive(pid int) bool { return testenv.ProcessRunning(pid) }
