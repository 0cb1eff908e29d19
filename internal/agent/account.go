package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// rediscoverEvery is the safety net for API changes no CRD event announces
// (aggregated APIs appearing, groups that failed discovery).
const rediscoverEvery = 5 * time.Minute

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// accountRunner serves one account for the duration of a session: it
// connects to the cluster, discovers resources, runs a streamRunner per
// stream, and rediscovers when CRDs change.
type accountRunner struct {
	acct   Account
	sess   *session
	budget *budget
	log    *slog.Logger
}

// run serves the account until ctx ends, retrying with backoff when the
// cluster cannot be reached.
func (r *accountRunner) run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		err := r.serve(ctx)
		if ctx.Err() != nil {
			return nil
		}
		failures++
		r.log.Warn("account unavailable", "err", err, "attempt", failures)
		r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: kubesvcv1.AccountStatus_ERROR, Message: err.Error(), Info: r.acct.info()})
		if !sleep(ctx, retryDelay(failures)) {
			return nil
		}
	}
	return nil
}

type runningStream struct {
	key    *kubesvcv1.StreamKey
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *accountRunner) serve(ctx context.Context) error {
	cfg, err := restConfig(r.acct)
	if err != nil {
		return err
	}
	info, err := probe(ctx, r.acct.Name, cfg)
	if err != nil {
		return err
	}
	r.acct.fillInfo(info)
	r.sess.agent.rememberInfo(info)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(withTimeout(cfg, 30*time.Second))
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: kubesvcv1.AccountStatus_SYNCING, Info: info})

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	streams := map[string]*runningStream{}
	defer func() {
		cancel()
		wg.Wait()
	}()

	synced := make(chan string, 64)
	unsynced := map[string]bool{}
	reportedWatching := false

	reconcile := func() error {
		keys, err := discoverStreams(dc, r.acct, r.log)
		if err != nil {
			return err
		}
		want := make(map[string]*kubesvcv1.StreamKey, len(keys))
		for _, k := range keys {
			want[streamID(k)] = k
		}
		for id, s := range streams {
			if _, ok := want[id]; ok {
				continue
			}
			s.cancel()
			<-s.done
			delete(streams, id)
			delete(unsynced, id)
			r.log.Info("resource gone; stream stopped", "stream", id)
			if err := r.sess.emit(ctx, &kubesvcv1.Change{Stream: s.key, Change: &kubesvcv1.Change_StreamRemoved{StreamRemoved: &kubesvcv1.StreamRemoved{}}}); err != nil {
				return err
			}
		}
		for id, k := range want {
			if _, ok := streams[id]; ok {
				continue
			}
			res := k.GetResource()
			var client dynamic.ResourceInterface = dyn.Resource(gvr(k))
			if res.GetNamespaced() && k.GetNamespace() != "" {
				client = dyn.Resource(gvr(k)).Namespace(k.GetNamespace())
			}
			sctx, scancel := context.WithCancel(ctx)
			rs := &runningStream{key: k, cancel: scancel, done: make(chan struct{})}
			streams[id] = rs
			unsynced[id] = true
			reportedWatching = false
			runner := &streamRunner{
				key: k, client: client, selector: namespaceSelector(k, r.acct.OmitNamespaces),
				resumeRV: r.sess.resumeVersion(k, r.acct.MaxResumableAge),
				emit:     r.sess.emit, budget: r.budget, scrubber: r.sess.agent.scrubber, stats: r.sess.agent.stats,
				log: r.log.With("stream", id),
				onSynced: func() {
					select {
					case synced <- id:
					case <-sctx.Done():
					}
				},
			}
			wg.Go(func() {
				defer close(rs.done)
				_ = runner.run(sctx)
			})
		}
		return nil
	}
	if err := reconcile(); err != nil {
		return err
	}

	crdChanged := make(chan struct{}, 1)
	wg.Go(func() { watchCRDs(ctx, dyn, crdChanged) })
	rediscover := time.NewTicker(rediscoverEvery)
	defer rediscover.Stop()
	var debounce <-chan time.Time
	for {
		if len(unsynced) == 0 && !reportedWatching {
			reportedWatching = true
			r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: kubesvcv1.AccountStatus_WATCHING, Info: info, Streams: uint32(len(streams))})
		}
		select {
		case <-ctx.Done():
			return nil
		case id := <-synced:
			delete(unsynced, id)
		case <-crdChanged:
			debounce = time.After(500 * time.Millisecond)
		case <-debounce:
			debounce = nil
			if err := reconcile(); err != nil {
				r.log.Warn("rediscovery after CRD change failed", "err", err)
			}
		case <-rediscover.C:
			if err := reconcile(); err != nil {
				r.log.Warn("periodic rediscovery failed", "err", err)
			}
		}
	}
}

// watchCRDs signals changed whenever a CustomResourceDefinition is added,
// changed or deleted, until ctx ends. Without permission to watch CRDs it
// gives up quietly and periodic rediscovery remains.
func watchCRDs(ctx context.Context, dyn dynamic.Interface, changed chan<- struct{}) {
	failures := 0
	for ctx.Err() == nil {
		w, err := dyn.Resource(crdResource).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			failures++
			if failures > 5 || !sleep(ctx, retryDelay(failures)) {
				return
			}
			continue
		}
		failures = 0
		// The initial ADDED events describe CRDs discovery already saw; the
		// rediscovery they trigger finds nothing new, which is cheap.
		for range w.ResultChan() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		w.Stop()
	}
}
