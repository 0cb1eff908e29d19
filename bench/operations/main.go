// Command operations measures deploy latency through the control plane and
// the agent (POST /kubernetes/ops, then GET /task/{id}?waitMs until it is
// done: applied and visible in the cache) against a direct server-side
// apply with client-go on the same cluster in the same run, for 1 object
// and for a 20-object deploy, sequentially and from 20 parallel clients.
// The agent and the control plane are the real binaries. Part of make bench.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func main() {
	n := flag.Int("n", 100, "deploys per case")
	cases := flag.String("cases", "1x1,20x1,1x20,20x20", "cases to run, each OBJECTSxPARALLEL")
	flag.Parse()
	cs, err := parseCases(*cases)
	if err != nil {
		fmt.Fprintln(os.Stderr, "operations: -cases:", err)
		os.Exit(2)
	}
	if err := run(*n, cs); err != nil {
		fmt.Fprintln(os.Stderr, "operations:", err)
		os.Exit(1)
	}
}

func manifest(name string, i int) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": fmt.Sprintf("%s-%02d", name, i), "namespace": "default"},
		"data":     map[string]any{"value": fmt.Sprint(time.Now().UnixNano())}}
}

// benchCase is one row of the table: deploys of objects objects each,
// from parallel clients.
type benchCase struct{ objects, parallel int }

func parseCases(s string) ([]benchCase, error) {
	var out []benchCase
	for _, f := range strings.Split(s, ",") {
		var c benchCase
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%dx%d", &c.objects, &c.parallel); err != nil || c.objects < 1 || c.parallel < 1 {
			return nil, fmt.Errorf("%q is not OBJECTSxPARALLEL (e.g. 20x1)", f)
		}
		out = append(out, c)
	}
	return out, nil
}

func run(n int, cases []benchCase) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "kubesvc-bench-ops-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Println("building the agent and control plane binaries ...")
	if err := benchproc.Build(work, "./cmd/agent", "./cmd/controlplane"); err != nil {
		return err
	}
	cluster, err := testenv.Start(ctx, testenv.Options{Name: "ops"})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	var ports [3]int
	for i := range ports {
		if ports[i], err = benchproc.FreePort(); err != nil {
			return err
		}
	}
	cpCfg := filepath.Join(work, "cp.yml")
	os.WriteFile(cpCfg, []byte(fmt.Sprintf("server: {address: 127.0.0.1, port: %d}\nkubesvc:\n  grpc:\n    server: {address: 127.0.0.1, port: %d}\nsql: {driver: sqlite, path: %q}\nlogging: {level: warn}\n",
		ports[0], ports[1], filepath.Join(work, "cp.db"))), 0o600)
	agCfg := filepath.Join(work, "agent.yml")
	os.WriteFile(agCfg, []byte(fmt.Sprintf("agent: {id: bench-agent}\nclouddriver: {grpc: \"127.0.0.1:%d\", insecure: true}\nserver: {host: 127.0.0.1, port: %d}\nlogging: {level: warn}\nkubernetes:\n  serverSideApply: {enabled: always}\n  accounts:\n  - name: bench\n    kubeconfigFile: %s\n    kinds: [ConfigMap]\n    namespaces: [default]\n",
		ports[1], ports[2], cluster.KubeconfigPath)), 0o600)
	cp, err := benchproc.Start(filepath.Join(work, "controlplane"), "--config", cpCfg)
	if err != nil {
		return err
	}
	defer cp.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	if err := benchproc.WaitHTTP(base+"/health", 30*time.Second); err != nil {
		return err
	}
	ag, err := benchproc.Start(filepath.Join(work, "agent"), "--config", agCfg)
	if err != nil {
		return err
	}
	defer ag.Stop()
	if err := benchproc.WaitFor(60*time.Second, func() bool {
		resp, err := http.Get(base + "/agents/kubernetes/accounts/bench")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var a struct{ AgentStates map[string]string }
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return a.AgentStates["bench-agent"] == "WATCHING"
	}); err != nil {
		return fmt.Errorf("agent not watching: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return err
	}
	cms := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("default")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	direct := func(name string, objects int) error {
		for i := range objects {
			data, _ := json.Marshal(manifest(name, i))
			if _, err := cms.Patch(ctx, fmt.Sprintf("%s-%02d", name, i), types.ApplyPatchType, data,
				metav1.PatchOptions{FieldManager: "bench", Force: ptr(true)}); err != nil {
				return err
			}
		}
		return nil
	}
	viaCP := func(name string, objects int) error {
		var mfs []map[string]any
		for i := range objects {
			mfs = append(mfs, manifest(name, i))
		}
		body, _ := json.Marshal([]map[string]any{{"deployManifest": map[string]any{"account": "bench", "versioned": false, "moniker": map[string]any{"app": "bench"}, "manifests": mfs}}})
		resp, err := client.Post(base+"/kubernetes/ops", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		var started struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&started)
		resp.Body.Close()
		if err != nil || started.ID == "" {
			return fmt.Errorf("start: %v (%d)", err, resp.StatusCode)
		}
		resp, err = client.Get(base + "/task/" + started.ID + "?waitMs=30000")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var tk struct {
			State  string
			Status struct{ Status string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil || tk.State != "SUCCEEDED" {
			return fmt.Errorf("task %s: %s: %s %v", started.ID, tk.State, tk.Status.Status, err)
		}
		return nil
	}

	fmt.Printf("\nDeploy latency, %d deploys per case (ConfigMaps; server-side apply on both paths)\n", n)
	fmt.Println("| case | direct p50 | direct p99 | via control plane + agent p50 | p99 | ratio p50 | ratio p99 |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, c := range cases {
		d, err := measure(n, c.parallel, func(w, i int) error { return direct(fmt.Sprintf("d%d-%d-%d", c.objects, w, i%5), c.objects) })
		if err != nil {
			return err
		}
		v, err := measure(n, c.parallel, func(w, i int) error { return viaCP(fmt.Sprintf("c%d-%d-%d", c.objects, w, i%5), c.objects) })
		if err != nil {
			return err
		}
		fmt.Printf("| %d object(s), %s | %s | %s | %s | %s | %.2fx | %.2fx |\n", c.objects, mode(c.parallel),
			ms(pct(d, .5)), ms(pct(d, .99)), ms(pct(v, .5)), ms(pct(v, .99)),
			float64(pct(v, .5))/float64(pct(d, .5)), float64(pct(v, .99))/float64(pct(d, .99)))
	}
	return nil
}

func mode(p int) string {
	if p == 1 {
		return "sequential"
	}
	return fmt.Sprintf("%d in parallel", p)
}

// measure runs f n times from parallel workers and returns the sorted
// durations.
func measure(n, parallel int, f func(worker, i int) error) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		out  []time.Duration
		errs error
		wg   sync.WaitGroup
	)
	for w := range parallel {
		wg.Go(func() {
			for i := w; i < n; i += parallel {
				start := time.Now()
				err := f(w, i)
				d := time.Since(start)
				mu.Lock()
				if err != nil && errs == nil {
					errs = err
				}
				out = append(out, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(out)
	return out, errs
}

func pct(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	return v[int(q*float64(len(v)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func ptr[T any](v T) *T { return &v }
