// Command failover measures how long the accounts of a control-plane
// replica take to be served again after it is killed with SIGKILL: from
// the kill to a change made in each account (written right after the kill)
// being visible in the read API of the surviving replica. Run it with
// `make bench` (or go run ./bench/failover; root is needed for the
// replicas' network namespaces, and a PostgreSQL server:
// eval "$(scripts/test-dbs.sh)").
//
// For each N (default 10, 100, 1000): two replicas on one PostgreSQL
// database, peers found through EndpointSlices, and one agent serving N
// accounts (account i: ConfigMaps of namespace bench-i), all real
// processes (internal/clusterharness), the agent on its documented
// defaults. Once every account is cached, the replica holding the agent is
// killed; the agent reconnects through the load balancer to the survivor,
// which takes its accounts over. The figure is the time until the last
// account's post-kill change is visible. Target: under 5 s for 1,000.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/clusterharness"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func main() {
	counts := flag.String("accounts", "10,100,1000", "account counts to measure")
	runs := flag.Int("runs", 1, "kills per account count")
	flag.Parse()
	if err := run(parseInts(*counts), *runs); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
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

func run(counts []int, runs int) error {
	if err := clusterharness.Available(); err != nil {
		return err
	}
	admin := os.Getenv("KUBESVC_TEST_POSTGRES_DSN")
	if admin == "" {
		return fmt.Errorf("KUBESVC_TEST_POSTGRES_DSN is not set: eval \"$(scripts/test-dbs.sh)\" starts PostgreSQL and prints it")
	}
	work, err := os.MkdirTemp("", "kubesvc-bench-failover-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Println("building the controlplane and agent binaries...")
	if err := clusterharness.Build(work); err != nil {
		return err
	}
	fmt.Printf("%8s  %12s  %14s  %s\n", "accounts", "served again", "all changes in", "target")
	for _, n := range counts {
		for r := range runs {
			served, visible, err := measure(n, r, admin, work)
			if err != nil {
				return fmt.Errorf("%d accounts: %w", n, err)
			}
			verdict := ""
			if n >= 1000 {
				verdict = "< 5 s: " + map[bool]string{true: "met", false: "NOT met"}[visible < 5*time.Second]
			}
			fmt.Printf("%8d  %12s  %14s  %s\n", n, served.Round(time.Millisecond), visible.Round(time.Millisecond), verdict)
		}
	}
	return nil
}

// freshDatabase creates an empty database on the PostgreSQL server.
func freshDatabase(admin, name string) (string, func(), error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		return "", nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		db.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() { _, _ = db.Exec("DROP DATABASE " + name + " WITH (FORCE)"); db.Close() }, nil
}

func measure(n, run int, admin, bin string) (served, visible time.Duration, err error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", fmt.Sprintf("kubesvc-failover-%d-", n))
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	dsn, drop, err := freshDatabase(admin, fmt.Sprintf("kubesvc_bench_failover_%d_%d_%d", n, run, os.Getpid()))
	if err != nil {
		return 0, 0, err
	}
	defer drop()
	cluster, err := testenv.Start(ctx, testenv.Options{Name: fmt.Sprintf("failover-%d", n), BaseDir: dir})
	if err != nil {
		return 0, 0, err
	}
	defer cluster.Stop()
	u, _ := url.Parse(dsn)
	h, err := clusterharness.New(ctx, clusterharness.Options{Driver: "postgres", DSN: dsn, DBAddr: u.Host,
		Kubeconfig: cluster.KubeconfigPath, Bin: bin, Dir: dir})
	if err != nil {
		return 0, 0, err
	}
	defer h.Close()
	var replicas []*clusterharness.Replica
	for _, id := range []string{"cp-1", "cp-2"} {
		r, err := h.StartReplica(ctx, id)
		if err != nil {
			return 0, 0, err
		}
		replicas = append(replicas, r)
	}
	kube := h.Kube()
	var specs []clusterharness.AccountSpec
	var accounts []string
	for i := range n {
		ns := fmt.Sprintf("bench-%d", i)
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return 0, 0, err
		}
		name := fmt.Sprintf("acct-%d", i)
		accounts = append(accounts, name)
		specs = append(specs, clusterharness.AccountSpec{Name: name, Namespace: ns})
	}
	if _, err := h.StartAgent("agent", specs); err != nil {
		return 0, 0, err
	}
	// Initial sync: a change in every account visible.
	if _, err := waitVisible(ctx, kube, replicas[0].URL, n, 5*time.Minute); err != nil {
		return 0, 0, fmt.Errorf("initial sync: %w", err)
	}
	asg, err := clusterharness.Assignments(ctx, replicas[0].URL)
	if err != nil {
		return 0, 0, err
	}
	victim, survivor := replicas[0], replicas[1]
	if asg[accounts[0]].ClouddriverID == replicas[1].ID {
		victim, survivor = replicas[1], replicas[0]
	}
	if err := victim.Kill(); err != nil {
		return 0, 0, err
	}
	killed := time.Now()
	done := make(chan time.Duration, 1)
	go func() {
		for {
			msg, err := clusterharness.Served(ctx, survivor.URL, accounts, []string{survivor.ID})
			if err == nil && msg == "" {
				done <- time.Since(killed)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	last, err := waitVisible(ctx, kube, survivor.URL, n, 2*time.Minute)
	if err != nil {
		return 0, 0, fmt.Errorf("after the kill: %w", err)
	}
	return <-done, last.Sub(killed), nil
}

// waitVisible writes the ConfigMap "probe" in every account's namespace
// (20 writers) and waits until the read API at base shows each at its
// written resourceVersion; it returns when the last one became visible.
func waitVisible(ctx context.Context, kube kubernetes.Interface, base string, n int, timeout time.Duration) (time.Time, error) {
	want := make([]string, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	next := make(chan int)
	for range 20 {
		wg.Go(func() {
			for i := range next {
				ns := fmt.Sprintf("bench-%d", i)
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}, Data: map[string]string{"at": time.Now().String()}}
				got, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
				if apierrors.IsNotFound(err) {
					got, err = kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				} else if err == nil {
					want[i] = got.ResourceVersion
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return time.Time{}, firstErr
	}
	deadline := time.Now().Add(timeout)
	for {
		var objs []struct {
			Account, Namespace, ResourceVersion string
		}
		q := url.Values{"kind": {"ConfigMap"}, "name": {"probe"}}
		err := clusterharness.GetJSON(ctx, base+"/cache/objects?"+q.Encode(), &objs)
		if err == nil {
			seen := 0
			for _, o := range objs {
				var i int
				if _, err := fmt.Sscanf(o.Namespace, "bench-%d", &i); err == nil && i < n && atLeast(o.ResourceVersion, want[i]) {
					seen++
				}
			}
			if seen == n {
				return time.Now(), nil
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("%d of %d changes visible after %s", seen, n, timeout)
			}
		} else if time.Now().After(deadline) {
			return time.Time{}, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func atLeast(rv, want string) bool {
	a, err1 := strconv.ParseUint(rv, 10, 64)
	b, err2 := strconv.ParseUint(want, 10, 64)
	return err1 == nil && err2 == nil && a >= b
}
