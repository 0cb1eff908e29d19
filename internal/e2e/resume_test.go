package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

func createConfigMap(t *testing.T, cs *kubernetes.Clientset, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(ns).Create(context.Background(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// A control plane that restarts loses nothing: the agent reconnects to the
// new process on the same database and resumes every watch from the
// persisted resource versions instead of listing again.
func TestControlPlaneRestartResumesWithoutRelisting(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartForTest(t, testenv.Options{})
	cs, _ := clients(t, cluster)
	db := filepath.Join(t.TempDir(), "cache.db")
	addr := freeAddr(t)
	cp := startControlPlane(t, cpOptions{dbPath: db, grpcAddr: addr})
	createConfigMap(t, cs, "default", "doomed")
	createConfigMap(t, cs, "default", "kept")
	ag := startAgent(t, addr, account("main", cluster))
	present(t, cp, q("account", "main", "kind", "ConfigMap", "namespace", "default"), "default/doomed", "default/kept")
	cp.watching(t, "main")
	relists := ag.Stats().Relists.Load()
	if relists == 0 {
		t.Fatal("the first session listed nothing")
	}

	cp.stop(t)
	// Changes while the control plane is down.
	createConfigMap(t, cs, "default", "born-in-the-gap")
	if err := cs.CoreV1().ConfigMaps("default").Delete(context.Background(), "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	cp2 := startControlPlane(t, cpOptions{dbPath: db, grpcAddr: addr})
	present(t, cp2, q("account", "main", "kind", "ConfigMap", "namespace", "default"), "default/born-in-the-gap", "default/kept")
	if got := ag.Stats().Connects.Load(); got != 2 {
		t.Errorf("agent sessions: %d, want 2", got)
	}
	if got := ag.Stats().Relists.Load(); got != relists {
		t.Errorf("agent listed %d streams again after the restart; want resumption only", got-relists)
	}
	if ag.Stats().Resumes.Load() == 0 {
		t.Error("no stream resumed from a resume point")
	}
}

// A watch whose resource version expired (410 Gone) is relisted with
// replace semantics: objects deleted during the gap leave the cache.
func TestExpiredWatchRelistsAndCatchesDeletions(t *testing.T) {
	t.Parallel()
	// Without the watch cache, watches are served by etcd, and a compacted
	// revision answers 410 Gone; compaction runs every second.
	cluster := testenv.StartForTest(t, testenv.Options{APIServerArgs: []string{"--watch-cache=false", "--etcd-compaction-interval=1s"}})
	cs, _ := clients(t, cluster)
	db := filepath.Join(t.TempDir(), "cache.db")
	addr := freeAddr(t)
	cp := startControlPlane(t, cpOptions{dbPath: db, grpcAddr: addr})
	createConfigMap(t, cs, "default", "doomed")
	createConfigMap(t, cs, "default", "kept")
	ag := startAgent(t, addr, account("main", cluster))
	present(t, cp, q("account", "main", "kind", "ConfigMap", "namespace", "default"), "default/doomed", "default/kept")
	cp.watching(t, "main")
	cp.stop(t)
	relists := ag.Stats().Relists.Load()
	// Every resume point the agent holds is at or before this version.
	list, err := cs.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := list.ResourceVersion

	if err := cs.CoreV1().ConfigMaps("default").Delete(context.Background(), "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Write until a watch from before the gap is refused as expired.
	i := 0
	eventually(t, wait, func() string {
		i++
		createConfigMap(t, cs, "kube-public", fmt.Sprintf("filler-%d", i))
		w, err := cs.CoreV1().ConfigMaps("default").Watch(context.Background(), metav1.ListOptions{ResourceVersion: old})
		if err != nil {
			if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				return ""
			}
			return err.Error()
		}
		defer w.Stop()
		ev := <-w.ResultChan()
		if ev.Type == watch.Error {
			if err := apierrors.FromObject(ev.Object); apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				return ""
			}
		}
		return fmt.Sprintf("resource version %s still watchable", old)
	})

	cp2 := startControlPlane(t, cpOptions{dbPath: db, grpcAddr: addr})
	present(t, cp2, q("account", "main", "kind", "ConfigMap", "namespace", "default"), "default/kept")
	if ag.Stats().Relists.Load() == relists {
		t.Error("no stream was listed again after its watch expired")
	}
}
