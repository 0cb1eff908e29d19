package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/bench/internal/floor"
)

type latencyResult struct {
	rate             int
	reader           readerMode
	writes, failures int
	achieved         float64 // writes per second actually started
	informer, cp     []time.Duration
	missedInformer   int
	missedCP         int
	// With -floor: the floor's latencies, and CPU per write over the pass
	// of our agent and control plane and of the floor's agent and server.
	floor                       []time.Duration
	missedFloor                 int
	cpuAgent, cpuCP             time.Duration
	cpuFloorAgent, cpuFloorServ time.Duration
}

// readerMode is how the benchmark reads a write back from the control
// plane.
type readerMode string

const (
	// readerWaiting: a GET .../NAME?waitMs is in flight before the write
	// starts, as the informer's watch is open before it: the answer comes
	// when the object becomes visible, plus the answer's way back.
	readerWaiting readerMode = "waiting"
	// readerAfterAck: the GET starts once the create is acknowledged, with
	// minResourceVersion set to the create's resourceVersion (a writer's
	// read-your-writes): it also pays the request's way there.
	readerAfterAck readerMode = "after-ack"
)

// readerLead is how long before its write a waiting reader's GET starts.
const readerLead = 50 * time.Millisecond

func parseReaders(s string) ([]readerMode, error) {
	var out []readerMode
	for _, f := range strings.Split(s, ",") {
		switch m := readerMode(strings.TrimSpace(f)); m {
		case readerWaiting, readerAfterAck:
			out = append(out, m)
		case "":
		default:
			return nil, fmt.Errorf("-readers: %q is not %q or %q", f, readerWaiting, readerAfterAck)
		}
	}
	return out, nil
}

const latencyNamespace = "bench-latency"

func (e *benchEnv) latency(ctx context.Context, rates []int, readers []readerMode, d time.Duration) ([]latencyResult, error) {
	cs, err := kubernetes.NewForConfig(e.cluster.RESTConfig())
	if err != nil {
		return nil, err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: latencyNamespace}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	cp, err := e.startControlPlane("latency")
	if err != nil {
		return nil, err
	}
	defer cp.stop()
	ag, err := e.startAgent(cp, "latency", latencyNamespace)
	if err != nil {
		return nil, err
	}
	defer ag.Stop()
	if err := waitWatching(cp, "latency", time.Minute); err != nil {
		return nil, err
	}
	var fl *floor.Pair
	if e.floorBin != "" {
		if fl, err = floor.StartPropagation(e.floorBin, e.cluster.KubeconfigPath, latencyNamespace); err != nil {
			return nil, err
		}
		defer fl.Stop()
		if e.floorAlone {
			ag.Stop() // the control plane stays up, idle
		}
	}

	// The baseline: a bare informer on the same ConfigMaps.
	var seen sync.Map // name -> time.Time of the first event
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "configmaps", latencyNamespace, fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		now := time.Now()
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			seen.LoadOrStore(cm.Name, now)
		}
	}}); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	informerDone := make(chan struct{})
	go func() { inf.Run(stop); close(informerDone) }()
	defer func() { close(stop); <-informerDone }()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("informer did not sync")
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}, Timeout: time.Minute}
	var out []latencyResult
	for _, rate := range rates {
		for _, reader := range readers {
			fmt.Printf("writing %d ConfigMaps/s for %s, reader %s ...\n", rate, d, reader)
			agCPU0, cpCPU0 := cpuTime(ag), cpuTime(cp.proc)
			var flServ0, flAgent0 time.Duration
			if fl != nil {
				flServ0, flAgent0 = fl.CPU()
			}
			r := e.measureRate(ctx, cs, client, cp, fl, rate, reader, d, &seen)
			perWrite := func(d time.Duration) time.Duration { return d / time.Duration(max(1, r.writes)) }
			r.cpuAgent, r.cpuCP = perWrite(cpuTime(ag)-agCPU0), perWrite(cpuTime(cp.proc)-cpCPU0)
			if fl != nil {
				flServ, flAgent := fl.CPU()
				r.cpuFloorServ, r.cpuFloorAgent = perWrite(flServ-flServ0), perWrite(flAgent-flAgent0)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func cpuTime(p *benchproc.Process) time.Duration {
	d, _ := p.CPUTime()
	return d
}

type sample struct {
	name      string
	ack       time.Time
	failed    bool
	cp, floor seen
}

// seen is when a reader's answer was read, and whether it had the object.
type seen struct {
	at      time.Time
	missing bool
}

// read GETs a sample's object from the control plane (and from the floor
// server, if fl is set, at the same time), waiting for it (at minRV or later,
// if given), and records when each answer was read.
func read(client *http.Client, cp *controlPlane, fl *floor.Pair, s *sample, minRV string, ours bool) {
	q := url.Values{"namespace": {latencyNamespace}, "group": {""}, "waitMs": {"30000"}}
	fq := url.Values{"waitMs": {"30000"}}
	if minRV != "" {
		q.Set("minResourceVersion", minRV)
		fq.Set("minResourceVersion", minRV)
	}
	cpGet := func() { get(client, cp.http+"/cache/objects/latency/ConfigMap/"+s.name+"?"+q.Encode(), &s.cp) }
	if !ours {
		cpGet = func() { s.cp.missing = true }
	}
	if fl == nil {
		cpGet()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { get(client, fl.HTTP+"/objects/"+s.name+"?"+fq.Encode(), &s.floor) })
	cpGet()
	wg.Wait()
}

func get(client *http.Client, url string, out *seen) {
	resp, err := client.Get(url)
	if err != nil {
		out.at, out.missing = time.Now(), true
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	out.at = time.Now()
	resp.Body.Close()
	out.missing = resp.StatusCode != http.StatusOK
}

func (e *benchEnv) measureRate(ctx context.Context, cs *kubernetes.Clientset, client *http.Client, cp *controlPlane, fl *floor.Pair, rate int, reader readerMode, d time.Duration, seen *sync.Map) latencyResult {
	n := int(float64(rate) * d.Seconds())
	samples := make([]sample, n)
	for i := range samples {
		samples[i].name = fmt.Sprintf("r%d-%s-%06d", rate, reader, i)
	}
	interval := time.Second / time.Duration(rate)
	// A waiting reader starts lead ticks before its write.
	lead := 0
	if reader == readerWaiting {
		lead = int((readerLead + interval - 1) / interval)
	}
	payload := strings.Repeat("x", 256)
	sem := make(chan struct{}, 256)
	var writers, readers sync.WaitGroup
	var writeStart, writeEnd time.Time
	start := time.Now()
	for tick := range n + lead {
		if wait := time.Until(start.Add(time.Duration(tick) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		if reader == readerWaiting && tick < n {
			s := &samples[tick]
			readers.Go(func() { read(client, cp, fl, s, "", !e.floorAlone) })
		}
		i := tick - lead
		if i < 0 {
			continue
		}
		if i == 0 {
			writeStart = time.Now()
		}
		sem <- struct{}{}
		writers.Go(func() {
			defer func() { <-sem }()
			s := &samples[i]
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: latencyNamespace}, Data: map[string]string{"payload": payload}}
			created, err := cs.CoreV1().ConfigMaps(latencyNamespace).Create(ctx, cm, metav1.CreateOptions{})
			s.ack = time.Now()
			if err != nil {
				s.failed = true
				return
			}
			if reader == readerAfterAck {
				read(client, cp, fl, s, created.ResourceVersion, !e.floorAlone)
			}
		})
	}
	writeEnd = time.Now()
	writers.Wait()
	readers.Wait()

	res := latencyResult{rate: rate, reader: reader, writes: n, achieved: float64(n) / writeEnd.Sub(writeStart).Seconds()}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range samples {
		if s.failed {
			res.failures++
			continue
		}
		if !s.cp.missing {
			res.cp = append(res.cp, s.cp.at.Sub(s.ack))
		} else {
			res.missedCP++
		}
		if fl != nil && !s.floor.missing {
			res.floor = append(res.floor, s.floor.at.Sub(s.ack))
		} else if fl != nil {
			res.missedFloor++
		}
		var t any
		var ok bool
		for {
			if t, ok = seen.Load(s.name); ok || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if ok {
			res.informer = append(res.informer, t.(time.Time).Sub(s.ack))
		} else {
			res.missedInformer++
		}
	}
	slices.Sort(res.cp)
	slices.Sort(res.floor)
	slices.Sort(res.informer)
	return res
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// ratioOf is the ratio of the q-th percentiles of v and base, or "-" when
// v was not measured.
func ratioOf(v, base []time.Duration, q float64) string {
	if len(v) == 0 {
		return "-"
	}
	return ratio(benchproc.Pct(v, q), benchproc.Pct(base, q))
}

// msOf formats the q-th percentile of v, or says it was not measured.
func msOf(v []time.Duration, q float64) string {
	if len(v) == 0 {
		return "not measured"
	}
	return benchproc.MS(benchproc.Pct(v, q))
}

func printLatency(results []latencyResult) {
	fmt.Println("\nPropagation latency: write acknowledged by the API server -> visible")
	fmt.Println("| rate (target / achieved) | control plane reader | writes | informer p50 | informer p99 | control plane p50 | control plane p99 | ratio p50 | ratio p99 | missed (informer / control plane / failed writes) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %d/s / %.0f/s | %s | %d | %s | %s | %s | %s | %s | %s | %d / %d / %d |\n",
			r.rate, r.achieved, r.reader, r.writes,
			benchproc.MS(benchproc.Pct(r.informer, 0.5)), benchproc.MS(benchproc.Pct(r.informer, 0.99)),
			msOf(r.cp, 0.5), msOf(r.cp, 0.99),
			ratioOf(r.cp, r.informer, 0.5), ratioOf(r.cp, r.informer, 0.99),
			r.missedInformer, r.missedCP, r.failures)
	}
}

// printFloor prints, for the runs with -floor, the floor beside ours: both
// against the same writes' informer.
func printFloor(results []latencyResult) {
	if len(results) == 0 || (len(results[0].floor) == 0 && results[0].missedFloor == 0) {
		return
	}
	fmt.Println("\nThe floor (-floor: a minimal agent relaying each watch event over one gRPC stream to a server keeping a map in memory; a lower bound, not a product path), same writes")
	fmt.Println("| rate | reader | informer p99 | floor p50 | floor p99 | floor ratio p99 | control plane p50 | control plane p99 | ratio p99 | ours p99 / floor p99 | CPU per write: agent, control plane | floor agent, floor server | missed (floor) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		inf99, fl99 := benchproc.Pct(r.informer, 0.99), benchproc.Pct(r.floor, 0.99)
		fmt.Printf("| %d/s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s, %s | %s, %s | %d |\n", r.rate, r.reader,
			benchproc.MS(inf99), benchproc.MS(benchproc.Pct(r.floor, 0.5)), benchproc.MS(fl99), ratio(fl99, inf99),
			msOf(r.cp, 0.5), msOf(r.cp, 0.99), ratioOf(r.cp, r.informer, 0.99), ratioOf(r.cp, r.floor, 0.99),
			us(r.cpuAgent), us(r.cpuCP), us(r.cpuFloorAgent), us(r.cpuFloorServ), r.missedFloor)
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%d us", d.Microseconds()) }
