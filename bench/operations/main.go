// Command operations measures deploy latency through the control plane and
// the agent (POST /kubernetes/ops, then GET /task/{id}?waitMs until it is
// done: applied and visible in the cache) against a direct server-side
// apply with client-go on the same cluster in the same run, for 1 object
// and for a 20-object deploy, sequentially and from 20 parallel clients.
// The paths take turns (see measure), so that a change of the machine's
// load hits them alike.
// A second baseline applies directly the objects as the deploy writes them
// (with Spinnaker's annotations and labels), which the API server takes
// longer to apply. The agent and the control plane are the real binaries.
// With -floor, a fourth path takes its turns: the floor of the architecture
// (bench/internal/floor: one POST to a minimal server process, down one gRPC
// stream to a minimal agent process doing the direct path's apply, the
// outcome back up and in the POST's answer), a lower bound for any design
// with these process hops, not a product path.
// Part of make bench.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/bench/internal/floor"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func main() {
	n := flag.Int("n", 100, "deploys per case")
	cases := flag.String("cases", "1x1,20x1,1x20,20x20", "cases to run, each OBJECTSxPARALLEL")
	shared := flag.Bool("shared", false, "every agent watches every path's namespace, the direct paths' one included, as an agent watching a whole cluster would (CPU per deploy then includes the other paths' watch events)")
	compare := flag.String("compare", "", "a directory with other agent and controlplane binaries: run them too, as a second path B in the same rounds (A/B of a change)")
	withFloor := flag.Bool("floor", false, "also measure the floor of the architecture, taking turns with the other paths: a minimal server process that sends each POSTed deploy down one gRPC stream "+
		"to a minimal agent process applying it as the direct path does, and answers the POST with the outcome (bench/internal/floor; a lower bound, not a product path)")
	flag.Parse()
	cs, err := parseCases(*cases)
	if err != nil {
		fmt.Fprintln(os.Stderr, "operations: -cases:", err)
		os.Exit(2)
	}
	if err := run(*n, cs, *compare, *shared, *withFloor); err != nil {
		fmt.Fprintln(os.Stderr, "operations:", err)
		os.Exit(1)
	}
}

func manifest(name string, i int, ns string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": fmt.Sprintf("%s-%02d", name, i), "namespace": ns},
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

func run(n int, cases []benchCase, compare string, shared, withFloor bool) error {
	ctx := context.Background()
	work, err := benchproc.Binaries("kubesvc-bench-ops-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	floorBin := ""
	if withFloor {
		if floorBin, err = floor.Build(work); err != nil {
			return err
		}
	}
	cluster, err := testenv.Start(ctx, testenv.Options{Name: "ops"})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	nsClient, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return err
	}
	for _, ns := range []string{"bench-a", "bench-b"} {
		obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
		if _, err := nsClient.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	watch := func(own string) string {
		if shared {
			return "[default, bench-a, bench-b]"
		}
		return "[" + own + "]"
	}
	a, err := startPath(work, work, "a", cluster.KubeconfigPath, watch("bench-a"))
	if err != nil {
		return err
	}
	defer a.stop()
	var b *cpPath
	if compare != "" {
		dir := filepath.Join(work, "b")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		if b, err = startPath(compare, dir, "b", cluster.KubeconfigPath, watch("bench-b")); err != nil {
			return err
		}
		defer b.stop()
	}
	cms := nsClient.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("default")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	direct := func(asDeployed bool) func(name string, objects int) error {
		return func(name string, objects int) error {
			for i := range objects {
				mf := manifest(name, i, "default")
				if asDeployed {
					spinnakerConventions(mf)
				}
				data, _ := json.Marshal(mf)
				if _, err := cms.Patch(ctx, fmt.Sprintf("%s-%02d", name, i), types.ApplyPatchType, data,
					metav1.PatchOptions{FieldManager: "bench", Force: ptr(true)}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	paths := []path{{"direct", "d", direct(false)}, {"direct, as deployed", "s", direct(true)},
		{"via control plane + agent", "c", a.deploy(client)}}
	if b != nil {
		paths = append(paths, path{"B: via control plane + agent (-compare)", "b", b.deploy(client)})
	}
	var fl *floor.Pair
	if floorBin != "" {
		if fl, err = floor.StartOperations(floorBin, cluster.KubeconfigPath); err != nil {
			return err
		}
		defer fl.Stop()
		paths = append(paths, path{"floor", "f", floorDeploy(client, fl)})
	}

	fmt.Printf("\nDeploy latency, %d deploys per case (ConfigMaps; server-side apply on every path)\n", n)
	fmt.Print("| case | direct p50 | direct p99 | direct, as deployed, p50 | via control plane + agent p50 | p99 | ratio p50 | ratio p99 | CPU per deploy: control plane, agent |")
	if b != nil {
		fmt.Print(" B p50 | B p99 | B ratio p50 | B ratio p99 | B CPU per deploy |")
	}
	extra := 0
	if b != nil {
		extra += 5
	}
	if fl != nil {
		fmt.Print(" floor p50 | floor p99 | floor ratio p50 | floor ratio p99 | ours p50 / floor p50 | CPU per deploy: floor server, floor agent |")
		extra += 6
	}
	fmt.Println()
	fmt.Println("|---|---|---|---|---|---|---|---|---|" + strings.Repeat("---|", extra))
	for _, c := range cases {
		aCP, aAg := a.cpu()
		var bCP, bAg time.Duration
		if b != nil {
			bCP, bAg = b.cpu()
		}
		var fServ, fAg time.Duration
		if fl != nil {
			fServ, fAg = fl.CPU()
		}
		d, err := measure(n, c, paths)
		if err != nil {
			return err
		}
		perDeploy := func(p *cpPath, cp0, ag0 time.Duration) string {
			cp, ag := p.cpu()
			return fmt.Sprintf("%s, %s", benchproc.MS((cp-cp0)/time.Duration(n)), benchproc.MS((ag-ag0)/time.Duration(n)))
		}
		fmt.Printf("| %d object(s), %s | %s | %s | %s | %s | %s | %.2fx | %.2fx | %s |", c.objects, mode(c.parallel),
			benchproc.MS(benchproc.Pct(d[0], .5)), benchproc.MS(benchproc.Pct(d[0], .99)), benchproc.MS(benchproc.Pct(d[1], .5)), benchproc.MS(benchproc.Pct(d[2], .5)), benchproc.MS(benchproc.Pct(d[2], .99)),
			ratio(d[2], d[0], .5), ratio(d[2], d[0], .99), perDeploy(a, aCP, aAg))
		if b != nil {
			fmt.Printf(" %s | %s | %.2fx | %.2fx | %s |", benchproc.MS(benchproc.Pct(d[3], .5)), benchproc.MS(benchproc.Pct(d[3], .99)), ratio(d[3], d[0], .5), ratio(d[3], d[0], .99), perDeploy(b, bCP, bAg))
		}
		if fl != nil {
			f := d[len(d)-1]
			serv, ag := fl.CPU()
			fmt.Printf(" %s | %s | %.2fx | %.2fx | %.2fx | %s, %s |", benchproc.MS(benchproc.Pct(f, .5)), benchproc.MS(benchproc.Pct(f, .99)), ratio(f, d[0], .5), ratio(f, d[0], .99), ratio(d[2], f, .5),
				benchproc.MS((serv-fServ)/time.Duration(n)), benchproc.MS((ag-fAg)/time.Duration(n)))
		}
		fmt.Println()
	}
	return nil
}

// spinnakerConventions adds what a deploy of manifest(name, i, "default")
// with moniker app "bench", unversioned, adds to the object.
func spinnakerConventions(mf map[string]any) {
	md := mf["metadata"].(map[string]any)
	n := md["name"].(string)
	md["annotations"] = map[string]any{
		"artifact.spinnaker.io/location": "default", "artifact.spinnaker.io/name": n,
		"artifact.spinnaker.io/type": "kubernetes/configMap", "artifact.spinnaker.io/version": "",
		"moniker.spinnaker.io/application": "bench", "moniker.spinnaker.io/cluster": "configMap " + n,
	}
	md["labels"] = map[string]any{"app.kubernetes.io/managed-by": "spinnaker", "app.kubernetes.io/name": "bench"}
}

// path is one way to deploy: its deploys use objects named with prefix.
type path struct {
	name, prefix string
	deploy       func(name string, objects int) error
}

// cpPath is a control plane and its agent, started from the binaries in
// bin, with their files in dir; id tells the pair's account apart. Its
// deploys go to namespace bench-ID; the account is the ConfigMaps of
// namespaces (only bench-ID unless -shared: then each pair's processes
// work only for their own deploys, and the direct paths deploy to default,
// which no agent watches).
type cpPath struct {
	base, account, namespace string
	cp, ag                   *benchproc.Process
}

// cpu returns the CPU time the control plane and the agent used so far.
func (p *cpPath) cpu() (cp, ag time.Duration) {
	cp, _ = p.cp.CPUTime()
	ag, _ = p.ag.CPUTime()
	return cp, ag
}

func startPath(bin, dir, id, kubeconfig, namespaces string) (*cpPath, error) {
	var ports [3]int
	for i := range ports {
		var err error
		if ports[i], err = benchproc.FreePort(); err != nil {
			return nil, err
		}
	}
	p := &cpPath{base: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), account: "bench-" + id, namespace: "bench-" + id}
	cpCfg := filepath.Join(dir, "cp.yml")
	os.WriteFile(cpCfg, []byte(fmt.Sprintf("server: {address: 127.0.0.1, port: %d}\nkubesvc:\n  grpc:\n    server: {address: 127.0.0.1, port: %d}\nsql: {driver: sqlite, path: %q}\nlogging: {level: warn}\n",
		ports[0], ports[1], filepath.Join(dir, "cp.db"))), 0o600)
	// The agent's configuration in a directory of its own: its watcher
	// wakes up for every file event of its directory, and the control
	// plane's database changes with every write.
	agDir := filepath.Join(dir, "agent-"+id)
	if err := os.Mkdir(agDir, 0o700); err != nil {
		return nil, err
	}
	agCfg := filepath.Join(agDir, "agent.yml")
	os.WriteFile(agCfg, []byte(fmt.Sprintf("agent: {id: bench-agent-%s}\nclouddriver: {grpc: \"127.0.0.1:%d\", insecure: true}\nserver: {host: 127.0.0.1, port: %d}\nlogging: {level: warn}\nkubernetes:\n  serverSideApply: {enabled: always}\n  accounts:\n  - name: %s\n    kubeconfigFile: %s\n    kinds: [ConfigMap]\n    namespaces: %s\n",
		id, ports[1], ports[2], p.account, kubeconfig, namespaces)), 0o600)
	var err error
	if p.cp, err = benchproc.Start(filepath.Join(bin, "controlplane"), "--config", cpCfg); err != nil {
		return nil, err
	}
	if err := benchproc.WaitHTTP(p.base+"/health", 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	if p.ag, err = benchproc.Start(filepath.Join(bin, "agent"), "--config", agCfg); err != nil {
		p.stop()
		return nil, err
	}
	if err := benchproc.WaitFor(60*time.Second, func() bool {
		resp, err := http.Get(p.base + "/agents/kubernetes/accounts/" + p.account)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var a struct{ AgentStates map[string]string }
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return a.AgentStates["bench-agent-"+id] == "WATCHING"
	}); err != nil {
		p.stop()
		return nil, fmt.Errorf("agent %s not watching: %w", id, err)
	}
	return p, nil
}

func (p *cpPath) stop() {
	if p.ag != nil {
		p.ag.Stop()
	}
	if p.cp != nil {
		p.cp.Stop()
	}
}

// deploy returns a deploy through the pair: POST /kubernetes/ops, then
// GET /task/{id}?waitMs until the task is done.
func (p *cpPath) deploy(client *http.Client) func(name string, objects int) error {
	return func(name string, objects int) error {
		var mfs []map[string]any
		for i := range objects {
			mfs = append(mfs, manifest(name, i, p.namespace))
		}
		body, _ := json.Marshal([]map[string]any{{"deployManifest": map[string]any{"account": p.account, "versioned": false, "moniker": map[string]any{"app": "bench"}, "manifests": mfs}}})
		resp, err := client.Post(p.base+"/kubernetes/ops", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		var started struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&started)
		resp.Body.Close()
		if err != nil || started.ID == "" {
			return fmt.Errorf("start: %v (%d)", err, resp.StatusCode)
		}
		resp, err = client.Get(p.base + "/task/" + started.ID + "?waitMs=30000")
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
}

// floorDeploy returns a deploy through the floor (bench/internal/floor): one
// POST of the manifests, answered once the floor agent applied them.
func floorDeploy(client *http.Client, fl *floor.Pair) func(name string, objects int) error {
	return func(name string, objects int) error {
		mfs := make([]map[string]any, 0, objects)
		for i := range objects {
			mfs = append(mfs, manifest(name, i, "default"))
		}
		body, _ := json.Marshal(mfs)
		resp, err := client.Post(fl.HTTP+"/deploy", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("floor deploy: %d %s", resp.StatusCode, msg)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
}

func mode(p int) string {
	if p == 1 {
		return "sequential"
	}
	return fmt.Sprintf("%d in parallel", p)
}

// measure runs n deploys of each path from c.parallel workers and returns
// each path's sorted durations. The paths take turns, so that a change in
// the machine's load hits them alike: sequentially, deploy by deploy; in
// parallel, in rounds where every worker deploys through one path (its own
// load is part of what is measured) before the next path's round.
func measure(n int, c benchCase, paths []path) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(paths))
	per := 1
	if c.parallel > 1 {
		per = max(c.parallel, n/5)
	}
	for done := 0; done < n; done += per {
		for k, p := range paths {
			d, err := round(min(per, n-done), c, p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			out[k] = append(out[k], d...)
		}
	}
	for _, d := range out {
		slices.Sort(d)
	}
	return out, nil
}

// round runs n deploys through p from c.parallel workers.
func round(n int, c benchCase, p path) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		out  []time.Duration
		errs error
		wg   sync.WaitGroup
	)
	for w := range min(c.parallel, n) {
		wg.Go(func() {
			for i := w; i < n; i += c.parallel {
				start := time.Now()
				err := p.deploy(fmt.Sprintf("%s%d-%d-%d", p.prefix, c.objects, w, i%5), c.objects)
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
	return out, errs
}

func ratio(v, base []time.Duration, q float64) float64 {
	return float64(benchproc.Pct(v, q)) / float64(benchproc.Pct(base, q))
}

func ptr[T any](v T) *T { return &v }
