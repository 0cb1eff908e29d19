package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const memoryNamespace = "bench-memory"

type memoryResult struct {
	objects  int
	cached   int
	peakRSS  int64
	syncTime time.Duration
}

func (e *benchEnv) memory(ctx context.Context, counts []int) ([]memoryResult, error) {
	cs, err := kubernetes.NewForConfig(e.cluster.RESTConfig())
	if err != nil {
		return nil, err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: memoryNamespace}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	slices.Sort(counts)
	created := 0
	var out []memoryResult
	for _, n := range counts {
		fmt.Printf("creating ConfigMaps up to %d ...\n", n)
		if err := createConfigMaps(ctx, cs, created, n); err != nil {
			return nil, err
		}
		created = n
		account := fmt.Sprintf("memory-%d", n)
		cp, err := e.startControlPlane(account)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		ag, err := e.startAgent(cp, account, memoryNamespace)
		if err != nil {
			cp.stop()
			return nil, err
		}
		err = waitWatching(cp, account, 10*time.Minute)
		sync := time.Since(start)
		var rss int64
		if err == nil {
			rss, err = ag.PeakRSS()
		}
		ag.Stop()
		cp.stop()
		if err != nil {
			return nil, err
		}
		cached := 0
		sums, err := cp.summaries(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range sums {
			if s.account == account {
				cached = s.objects
			}
		}
		out = append(out, memoryResult{objects: n, cached: cached, peakRSS: rss, syncTime: sync})
	}
	return out, nil
}

func createConfigMaps(ctx context.Context, cs *kubernetes.Clientset, from, to int) error {
	payload := strings.Repeat("y", 1024)
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	next.Store(int64(from))
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%06d", i), Namespace: memoryNamespace},
					Data: map[string]string{"payload": payload}}
				if _, err := cs.CoreV1().ConfigMaps(memoryNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return failed
}

func printMemory(results []memoryResult) {
	fmt.Println("\nAgent peak RSS (VmHWM) after listing and watching N ConfigMaps of ~1 KiB")
	fmt.Println("| objects | cached by the control plane | agent peak RSS | time to all streams synced |")
	fmt.Println("|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %d | %d | %.1f MiB | %s |\n", r.objects, r.cached, float64(r.peakRSS)/(1<<20), r.syncTime.Round(10*time.Millisecond))
	}
}
