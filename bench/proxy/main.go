// Command proxy measures the Kubernetes API proxy (client-go -> control
// plane REST -> agent's stream -> API server, and back) against the same
// client-go requests sent directly to the API server, on the same cluster
// in the same run, taking turns: the latency of a GET of one ConfigMap, of
// a LIST of many (a body of a few MiB, past the proxy's flow-control
// window), and of a watch event (from the create's acknowledgement to the
// event reaching the watching client). The agent and the control plane are
// the real binaries. Part of make bench.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

const namespace = "proxy-bench"

func main() {
	n := flag.Int("n", 300, "GETs and watch events per path")
	lists := flag.Int("lists", 30, "LISTs per path")
	objects := flag.Int("objects", 1000, "ConfigMaps (2 KiB of incompressible data each) the LISTs return")
	flag.Parse()
	if err := run(*n, *lists, *objects); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

func run(n, lists, objects int) error {
	ctx := context.Background()
	work, err := benchproc.Binaries("kubesvc-bench-proxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cluster, err := testenv.Start(ctx, testenv.Options{Name: "proxy"})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	direct, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return err
	}
	base, stop, err := start(work, cluster.KubeconfigPath)
	if err != nil {
		return err
	}
	defer stop()
	proxied, err := kubernetes.NewForConfig(&rest.Config{Host: base + "/agents/kubernetes/accounts/bench/proxy", QPS: -1})
	if err != nil {
		return err
	}
	fmt.Printf("creating %d ConfigMaps ...\n", objects)
	if _, err := direct.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	for i := range objects {
		data := make([]byte, 1536)
		_, _ = rand.Read(data)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i)}, Data: map[string]string{"d": base64.StdEncoding.EncodeToString(data)}}
		if _, err := direct.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	paths := []struct {
		name string
		cs   *kubernetes.Clientset
	}{{"direct", direct}, {"via proxy", proxied}}

	get := func(cs *kubernetes.Clientset) error {
		_, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, "cm-00000", metav1.GetOptions{})
		return err
	}
	var bytes int
	list := func(cs *kubernetes.Clientset) error {
		l, err := cs.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{})
		if err == nil && len(l.Items) != objects {
			err = fmt.Errorf("LIST returned %d ConfigMaps, want %d", len(l.Items), objects)
		}
		if err == nil && bytes == 0 {
			for _, it := range l.Items {
				bytes += len(it.Data["d"])
			}
		}
		return err
	}
	// Warm both paths (connections, the agent's relay) before measuring.
	for _, p := range paths {
		if err := get(p.cs); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	results := map[string][2][]time.Duration{}
	for _, c := range []struct {
		what   string
		rounds int
		do     func(*kubernetes.Clientset) error
	}{{"GET one ConfigMap", n, get}, {fmt.Sprintf("LIST %d ConfigMaps", objects), lists, list}} {
		var d [2][]time.Duration
		for range c.rounds {
			for i, p := range paths {
				t0 := time.Now()
				if err := c.do(p.cs); err != nil {
					return fmt.Errorf("%s %s: %w", c.what, p.name, err)
				}
				d[i] = append(d[i], time.Since(t0))
			}
		}
		results[c.what] = d
	}
	w, err := watchLatency(ctx, direct, proxied, n)
	if err != nil {
		return err
	}
	results["watch event (create ack -> event)"] = w

	fmt.Printf("\nKubernetes API proxy vs direct client-go, same cluster, same run (LIST body %.1f MiB of data)\n\n", float64(bytes)/(1<<20))
	fmt.Println("| request | direct p50 / p99 | via proxy p50 / p99 | ratio p50 | ratio p99 |")
	fmt.Println("|---|---|---|---|---|")
	for _, what := range []string{"GET one ConfigMap", fmt.Sprintf("LIST %d ConfigMaps", objects), "watch event (create ack -> event)"} {
		d := results[what]
		for i := range d {
			slices.Sort(d[i])
		}
		fmt.Printf("| %s | %s / %s | %s / %s | %s | %s |\n", what,
			benchproc.MS(benchproc.Pct(d[0], 0.5)), benchproc.MS(benchproc.Pct(d[0], 0.99)),
			benchproc.MS(benchproc.Pct(d[1], 0.5)), benchproc.MS(benchproc.Pct(d[1], 0.99)),
			ratio(d[1], d[0], 0.5), ratio(d[1], d[0], 0.99))
	}
	return nil
}

// ratio is v's q quantile over base's, or "-" when base's is under 0.1 ms
// (a watch event usually reaches the direct watch before the create's
// acknowledgement reaches the writer: a ratio of two near-zeros says
// nothing).
func ratio(v, base []time.Duration, q float64) string {
	b := benchproc.Pct(base, q)
	if b < 100*time.Microsecond {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(benchproc.Pct(v, q))/float64(b))
}

// watchLatency watches the namespace's ConfigMaps directly and through the
// proxy at once, creates n more one at a time, and measures, for each
// watch, the time from the create's acknowledgement to its ADDED event (a
// negative time counts as 0: the event came before the acknowledgement).
func watchLatency(ctx context.Context, direct, proxied *kubernetes.Clientset, n int) ([2][]time.Duration, error) {
	var out [2][]time.Duration
	l, err := direct.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return out, err
	}
	var watches [2]watch.Interface
	for i, cs := range []*kubernetes.Clientset{direct, proxied} {
		if watches[i], err = cs.CoreV1().ConfigMaps(namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion}); err != nil {
			return out, err
		}
		defer watches[i].Stop()
	}
	for i := range n {
		name := fmt.Sprintf("watched-%05d", i)
		if _, err := direct.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return out, err
		}
		ack := time.Now()
		for j, w := range watches {
			timeout := time.After(30 * time.Second)
			for seen := false; !seen; {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						return out, fmt.Errorf("watch %d ended", j)
					}
					if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type == watch.Added && cm.Name == name {
						out[j] = append(out[j], max(time.Since(ack), 0))
						seen = true
					}
				case <-timeout:
					return out, fmt.Errorf("watch %d: no event for %s", j, name)
				}
			}
		}
	}
	return out, nil
}

// start runs the control plane (proxy on) and an agent relaying the
// cluster's account (kinds: Namespace only, so that its own watches cost
// little), and returns the REST base URL.
func start(dir, kubeconfig string) (string, func(), error) {
	var ports [3]int
	for i := range ports {
		var err error
		if ports[i], err = benchproc.FreePort(); err != nil {
			return "", nil, err
		}
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	cpCfg := filepath.Join(dir, "cp.yml")
	if err := os.WriteFile(cpCfg, []byte(fmt.Sprintf("server: {address: 127.0.0.1, port: %d}\nkubesvc:\n  proxy: {enabled: true}\n  grpc:\n    server: {address: 127.0.0.1, port: %d}\nsql: {driver: sqlite, path: %q}\nlogging: {level: error}\n",
		ports[0], ports[1], filepath.Join(dir, "cp.db"))), 0o600); err != nil {
		return "", nil, err
	}
	agDir := filepath.Join(dir, "agent-config")
	if err := os.Mkdir(agDir, 0o700); err != nil {
		return "", nil, err
	}
	agCfg := filepath.Join(agDir, "agent.yml")
	if err := os.WriteFile(agCfg, []byte(fmt.Sprintf("agent: {id: bench-agent}\nclouddriver: {grpc: \"127.0.0.1:%d\", insecure: true}\nserver: {host: 127.0.0.1, port: %d}\nlogging: {level: warn}\nkubernetes:\n  proxy: {enabled: true}\n  accounts:\n  - name: bench\n    kubeconfigFile: %s\n    kinds: [Namespace]\n",
		ports[1], ports[2], kubeconfig)), 0o600); err != nil {
		return "", nil, err
	}
	cp, err := benchproc.Start(filepath.Join(dir, "controlplane"), "--config", cpCfg)
	if err != nil {
		return "", nil, err
	}
	if err := benchproc.WaitHTTP(base+"/health", 30*time.Second); err != nil {
		cp.Stop()
		return "", nil, err
	}
	ag, err := benchproc.Start(filepath.Join(dir, "agent"), "--config", agCfg)
	if err != nil {
		cp.Stop()
		return "", nil, err
	}
	stop := func() { ag.Stop(); cp.Stop() }
	if err := benchproc.WaitFor(60*time.Second, func() bool {
		resp, err := http.Get(base + "/agents/kubernetes/accounts/bench/proxy/version")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		stop()
		return "", nil, fmt.Errorf("the proxy never answered: %w", err)
	}
	return base, stop, nil
}
