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
)

type latencyResult struct {
	rate             int
	reader           readerMode
	writes, failures int
	achieved         float64 // writes per second actually started
	informer, cp     []time.Duration
	missedInformer   int
	missedCP         int
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
			r := e.measureRate(ctx, cs, client, cp, rate, reader, d, &seen)
			out = append(out, r)
		}
	}
	return out, nil
}

type sample struct {
	name      string
	ack       time.Time
	cpSeen    time.Time
	failed    bool
	cpMissing bool
}

// read GETs a sample's object from the control plane, waiting for it (at
// minRV or later, if given), and records when the answer was read.
func read(client *http.Client, cp *controlPlane, s *sample, minRV string) {
	q := url.Values{"namespace": {latencyNamespace}, "group": {""}, "waitMs": {"30000"}}
	if minRV != "" {
		q.Set("minResourceVersion", minRV)
	}
	resp, err := client.Get(cp.http + "/cache/objects/latency/ConfigMap/" + s.name + "?" + q.Encode())
	if err != nil {
		s.cpSeen, s.cpMissing = time.Now(), true
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	s.cpSeen = time.Now()
	resp.Body.Close()
	s.cpMissing = resp.StatusCode != http.StatusOK
}

func (e *benchEnv) measureRate(ctx context.Context, cs *kubernetes.Clientset, client *http.Client, cp *controlPlane, rate int, reader readerMode, d time.Duration, seen *sync.Map) latencyResult {
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
			readers.Go(func() { read(client, cp, s, "") })
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
				read(client, cp, s, created.ResourceVersion)
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
		if !s.cpMissing {
			res.cp = append(res.cp, s.cpSeen.Sub(s.ack))
		} else {
			res.missedCP++
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
	slices.Sort(res.informer)
	return res
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

func printLatency(results []latencyResult) {
	fmt.Println("\nPropagation latency: write acknowledged by the API server -> visible")
	fmt.Println("| rate (target / achieved) | control plane reader | writes | informer p50 | informer p99 | control plane p50 | control plane p99 | ratio p50 | ratio p99 | missed (informer / control plane / failed writes) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %d/s / %.0f/s | %s | %d | %s | %s | %s | %s | %s | %s | %d / %d / %d |\n",
			r.rate, r.achieved, r.reader, r.writes,
			benchproc.MS(benchproc.Pct(r.informer, 0.5)), benchproc.MS(benchproc.Pct(r.informer, 0.99)),
			benchproc.MS(benchproc.Pct(r.cp, 0.5)), benchproc.MS(benchproc.Pct(r.cp, 0.99)),
			ratio(benchproc.Pct(r.cp, 0.5), benchproc.Pct(r.informer, 0.5)), ratio(benchproc.Pct(r.cp, 0.99), benchproc.Pct(r.informer, 0.99)),
			r.missedInformer, r.missedCP, r.failures)
	}
}
