// Command propagation measures how fast a change written to Kubernetes
// becomes visible in the control plane's read API, beside a bare client-go
// informer on the same cluster in the same run, and the agent's peak memory
// with 10k and 50k objects. Run it with `make bench` (or go run ./bench/propagation).
//
// Latency: ConfigMaps are created at a steady rate (open loop: a write is
// started on schedule whether or not earlier ones finished). For each, t0 is
// when the API server acknowledged the create; the informer's latency is when
// its event handler saw the object, the control plane's is when a
// GET /cache/objects/...?waitMs answered with it: a GET in flight before the
// write (reader "waiting", as the informer's watch is open before it), or
// one started after the ack with minResourceVersion (reader "after-ack",
// which also pays the request's way to the control plane). The
// agent and the control plane (on SQLite) run as their own processes, the
// real binaries; this process holds only the writers, the informer and the
// readers.
//
// With -floor, the same writes are also read from the floor of the
// architecture (bench/internal/floor: a minimal agent process relaying each
// watch event over one gRPC stream to a server process that keeps them in
// memory), by the same kind of reader at the same time: a lower bound for
// any design with these process hops.
//
// Memory: N ConfigMaps exist; a fresh agent process lists and watches them
// all into a fresh control plane; its peak RSS (VmHWM) is read once the
// account reports all streams synced.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/bench/internal/floor"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func main() {
	rates := flag.String("rates", "200,1000", "steady write rates to measure, changes per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to write at each rate")
	objects := flag.String("objects", "10000,50000", "object counts for the agent memory measurement")
	readerFlag := flag.String("readers", "waiting,after-ack", "how the control plane is read back, each measured in its own pass: "+
		"waiting (a GET with waitMs in flight before the write, as the informer's watch is open) or after-ack (a GET with minResourceVersion once the create is acknowledged)")
	withFloor := flag.Bool("floor", false, "also measure the floor of the architecture on the same writes: a minimal agent process relaying each watch event over one gRPC stream "+
		"to a server process that keeps a map in memory and answers the same waiting GET (bench/internal/floor; a lower bound, not a product path)")
	floorAlone := flag.Bool("floor-alone", false, "with -floor: measure the floor without ours beside it, as it would run in production "+
		"(our agent is stopped once it watches and our reader is left out; the control plane stays up, idle); our columns then say so")
	flag.Parse()
	if *floorAlone && !*withFloor {
		fmt.Fprintln(os.Stderr, "propagation: -floor-alone needs -floor")
		os.Exit(2)
	}
	readers, err := parseReaders(*readerFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "propagation:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(parseInts(*rates), readers, *duration, parseInts(*objects), *withFloor, *floorAlone, log); err != nil {
		fmt.Fprintln(os.Stderr, "propagation:", err)
		os.Exit(1)
	}
}

func parseInts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func run(rates []int, readers []readerMode, duration time.Duration, objects []int, withFloor, floorAlone bool, log *slog.Logger) error {
	ctx := context.Background()
	work, err := benchproc.Binaries("kubesvc-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	floorBin := ""
	if withFloor && len(rates) > 0 && len(readers) > 0 {
		if floorBin, err = floor.Build(work); err != nil {
			return err
		}
	}
	fmt.Println("starting a Kubernetes cluster ...")
	cluster, err := testenv.Start(ctx, testenv.Options{Name: "bench"})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	env := &benchEnv{work: work, agentBin: filepath.Join(work, "agent"), controlplaneBin: filepath.Join(work, "controlplane"), cluster: cluster, floorBin: floorBin, floorAlone: floorAlone, log: log}

	fmt.Printf("\nmachine: %s\n", machine())
	if len(rates) > 0 && len(readers) > 0 {
		results, err := env.latency(ctx, rates, readers, duration)
		if err != nil {
			return err
		}
		printLatency(results)
		printFloor(results)
	}
	if len(objects) > 0 {
		results, err := env.memory(ctx, objects)
		if err != nil {
			return err
		}
		printMemory(results)
	}
	return nil
}

func machine() string {
	cpus := 0
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(data), "processor\t:")
	}
	return fmt.Sprintf("%d CPUs, Kubernetes %s, etcd %s", cpus, testenv.KubernetesVersion, testenv.EtcdVersion)
}
