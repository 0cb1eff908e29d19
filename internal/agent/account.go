package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"google.golang.org/protobuf/proto"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// rediscoverEvery is the safety net for API changes no CRD event announces
// (aggregated APIs appearing, groups that failed discovery).
const rediscoverEvery = 5 * time.Minute

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// accountRunner serves one account for the duration of a session: it
// connects to the cluster, discovers resources, runs a streamRunner per
// stream, and rediscovers when CRDs change or a stream's resource vanishes.
type accountRunner struct {
	acct   Account
	sess   *session
	budget *budget
	log    *slog.Logger
	// meta delivers edits of the account's description alone.
	meta <-chan Account
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
		if !r.pause(ctx, retryDelay(failures), err) {
			return nil
		}
	}
	return nil
}

// pause waits d before the next attempt, reporting an edit of the
// account's description that arrives meanwhile (still failing with err).
// It returns false when ctx ends.
func (r *accountRunner) pause(ctx context.Context, d time.Duration, err error) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case acct := <-r.meta:
			r.acct = acct
			r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: kubesvcv1.AccountStatus_ERROR, Message: err.Error(), Info: r.acct.info()})
		}
	}
}

type runningStream struct {
	key    *kubesvcv1.StreamKey
	cancel context.CancelFunc
	done   chan struct{}
}

// streamReport is a stream runner telling its account whether it is
// serving (err nil) or cannot (err set, e.g. forbidden).
type streamReport struct {
	id  string
	err error
}

// streams is the account runner's view of its streams. It is used by the
// serve goroutine only.
type streams struct {
	running  map[string]*runningStream
	reported map[string]error // last report of each running stream
}

func (r *accountRunner) serve(ctx context.Context) error {
	select {
	case acct := <-r.meta: // an edit made while the last attempt failed
		r.acct = acct
	default:
	}
	facts := r.sess.agent.facts.get(r.acct)
	var cfg *rest.Config
	var info *kubesvcv1.AccountInfo
	if facts != nil {
		// Learnt by a recent session: a reconnection resumes at once. The
		// description is the account's as it is now.
		cfg, info = facts.cfg, proto.Clone(facts.info).(*kubesvcv1.AccountInfo)
		r.acct.fillInfo(info)
	} else {
		var err error
		if cfg, err = restConfig(r.acct); err != nil {
			return err
		}
		if info, err = probe(ctx, r.acct.Name, cfg); err != nil {
			return err
		}
		r.acct.fillInfo(info)
		r.sess.agent.facts.probed(r.acct, cfg, info)
	}
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
	st := &streams{running: map[string]*runningStream{}, reported: map[string]error{}}
	defer func() {
		cancel()
		wg.Wait()
	}()
	reports := make(chan streamReport, 64)
	rediscover := make(chan struct{}, 1)
	trigger := func() {
		select {
		case rediscover <- struct{}{}:
		default:
		}
	}

	stop := func(id string) {
		s := st.running[id]
		s.cancel()
		<-s.done
		delete(st.running, id)
		delete(st.reported, id)
	}
	start := func(k *kubesvcv1.StreamKey) {
		id := streamID(k)
		var client dynamic.ResourceInterface = dyn.Resource(gvr(k))
		if k.GetResource().GetNamespaced() && k.GetNamespace() != "" {
			client = dyn.Resource(gvr(k)).Namespace(k.GetNamespace())
		}
		sctx, scancel := context.WithCancel(ctx)
		rs := &runningStream{key: k, cancel: scancel, done: make(chan struct{})}
		st.running[id] = rs
		runner := &streamRunner{
			key: k, client: client, selector: namespaceSelector(k, r.acct.OmitNamespaces),
			resumeRV: r.sess.takeResume(k, r.acct.MaxResumableAge),
			emit:     r.sess.emit, budget: r.budget, scrubber: r.sess.agent.scrubber, stats: r.sess.agent.stats,
			log: r.log.With("stream", id),
			report: func(err error) {
				select {
				case reports <- streamReport{id: id, err: err}:
				case <-sctx.Done():
				}
			},
			rediscover: trigger,
		}
		if isSynthetic(k) {
			// The stream's goroutine keeps its own copy: r.acct changes
			// with edits of the description (not of what is streamed).
			acct := r.acct
			syn := &syntheticRunner{streamRunner: runner, build: func(context.Context) ([]*unstructured.Unstructured, error) {
				return syntheticNamespaces(acct), nil
			}}
			if k.GetResource().GetKind() == syntheticCRDResource.GetKind() {
				syn.every = syntheticRefresh
				syn.build = func(context.Context) ([]*unstructured.Unstructured, error) {
					objs, missing, err := syntheticCRDs(dc, acct)
					if len(missing) > 0 {
						runner.log.Warn("customResourceDefinitions not served by the API server; not exposed", "kinds", missing)
					}
					return objs, err
				}
			}
			wg.Go(func() {
				defer close(rs.done)
				r.sess.agent.stats.Streams.Add(1)
				defer r.sess.agent.stats.Streams.Add(-1)
				_ = syn.run(sctx)
			})
			return
		}
		wg.Go(func() {
			defer close(rs.done)
			r.sess.agent.stats.Streams.Add(1)
			defer r.sess.agent.stats.Streams.Add(-1)
			_ = runner.run(sctx)
		})
	}
	// reconcile makes the running streams match discovery, and removes
	// from the control plane the streams it holds that are no longer
	// wanted. Streams of groups that failed discovery are left alone.
	var cachedKeys []*kubesvcv1.StreamKey
	if facts != nil {
		cachedKeys = facts.keys
	}
	var lastKeys []*kubesvcv1.StreamKey
	reconcile := func() error {
		keys, failed := cachedKeys, map[string]bool(nil)
		fromCache := keys != nil
		if keys == nil {
			var err error
			if keys, failed, err = discoverStreams(dc, r.acct, r.log); err != nil {
				return err
			}
			if len(failed) == 0 {
				r.sess.agent.facts.discovered(r.acct, keys)
			}
		}
		cachedKeys = nil // only the first reconcile of a session reuses them
		lastKeys = keys
		want := make(map[string]*kubesvcv1.StreamKey, len(keys))
		for _, k := range keys {
			want[streamID(k)] = k
		}
		for id, s := range st.running {
			if failed[s.key.GetResource().GetGroup()] {
				continue
			}
			if k, ok := want[id]; !ok || !sameStream(k, s.key) {
				stop(id) // gone, or now served at another version or selector
			}
		}
		for id, k := range r.sess.knownStreams(r.acct.Name) {
			if _, ok := want[id]; ok || failed[k.GetResource().GetGroup()] {
				continue
			}
			if fromCache {
				// The control plane holds a stream the cached discovery
				// does not know (a CRD added since, or found while part
				// of discovery failed): a fresh discovery decides.
				trigger()
				continue
			}
			r.log.Info("stream no longer wanted; removing it from the cache", "stream", id)
			if err := r.sess.emit(ctx, &kubesvcv1.Change{Stream: k, Change: &kubesvcv1.Change_StreamRemoved{StreamRemoved: &kubesvcv1.StreamRemoved{}}}); err != nil {
				return err
			}
		}
		for id, k := range want {
			if _, ok := st.running[id]; !ok {
				start(k)
			}
		}
		return nil
	}
	if err := reconcile(); err != nil {
		return err
	}

	crdChanged := make(chan struct{}, 1)
	if !r.acct.kindsAllFound(lastKeys) {
		wg.Go(func() { watchCRDs(ctx, dyn, crdChanged, retryDelay) })
	}
	periodic := time.NewTicker(rediscoverEvery)
	defer periodic.Stop()
	var debounce <-chan time.Time
	lastStatus := "\x00" // no WATCHING sent yet
	state := kubesvcv1.AccountStatus_SYNCING
	for {
		if msg, done := st.summary(); done && r.describe(msg, lastKeys) != lastStatus {
			msg = r.describe(msg, lastKeys)
			lastStatus, state = msg, kubesvcv1.AccountStatus_WATCHING
			if msg != "" {
				r.log.Warn("account watching, with problems", "status", msg)
			}
			r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: state, Message: msg, Info: info, Streams: uint32(len(st.running))})
		}
		select {
		case <-ctx.Done():
			return nil
		case d := <-r.meta:
			// Its permissions changed: describe it again, same state.
			r.acct = d
			info = proto.Clone(info).(*kubesvcv1.AccountInfo)
			d.fillInfo(info)
			r.sess.agent.rememberInfo(info)
			msg := ""
			if state == kubesvcv1.AccountStatus_WATCHING {
				msg = lastStatus
			}
			r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: state, Message: msg, Info: info, Streams: uint32(len(st.running))})
		case rep := <-reports:
			if _, ok := st.running[rep.id]; ok {
				st.reported[rep.id] = rep.err
			}
		case <-crdChanged:
			debounce = time.After(500 * time.Millisecond)
		case <-rediscover:
			debounce = time.After(500 * time.Millisecond)
		case <-debounce:
			debounce = nil
			if err := reconcile(); err != nil {
				r.log.Warn("rediscovery failed", "err", err)
			}
		case <-periodic.C:
			if err := reconcile(); err != nil {
				r.log.Warn("periodic rediscovery failed", "err", err)
			}
		}
	}
}

// describe completes the status message naming the streams that cannot
// be served (summary) with what an operator most often has to change:
// credentials limited to some namespaces cannot list cluster-wide, and a
// kind named in kinds that the API server does not serve is watched only
// once it is.
func (r *accountRunner) describe(msg string, keys []*kubesvcv1.StreamKey) string {
	if msg != "" && len(r.acct.Namespaces) == 0 && strings.Contains(msg, "at the cluster scope") {
		msg += "; if the account's credentials may read only some namespaces, list them in its namespaces"
	}
	if missing := r.acct.missingKinds(keys); len(missing) > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += "kinds not served by the API server (a typo, or a custom resource not installed yet: watched once it is): " + strings.Join(missing, ", ")
	}
	return msg
}

// summary reports whether every running stream has reported, and a message
// naming the streams that cannot be served.
func (st *streams) summary() (msg string, done bool) {
	var failing []string
	for id := range st.running {
		err, ok := st.reported[id]
		if !ok {
			return "", false
		}
		if err != nil {
			failing = append(failing, fmt.Sprintf("%s: %v", id, err))
		}
	}
	if len(failing) == 0 {
		return "", true
	}
	slices.Sort(failing)
	return fmt.Sprintf("%d of %d streams cannot be served: %s", len(failing), len(st.running), strings.Join(failing, "; ")), true
}

// watchCRDs signals changed whenever a CustomResourceDefinition is added,
// changed or deleted, until ctx ends. Without permission to watch CRDs (or
// without the API) it gives up quietly and periodic rediscovery remains;
// any other failure (an API server restarting) is retried after
// delay(failures), for as long as it lasts. It watches from the current
// resource version (read with a one-item list), so the CRDs that exist
// already cause no rediscovery: with many accounts, a reconnection does
// not turn into one discovery per account.
func watchCRDs(ctx context.Context, dyn dynamic.Interface, changed chan<- struct{}, delay func(failures int) time.Duration) {
	failures, rewatch := 0, false
	for ctx.Err() == nil {
		var w watch.Interface
		list, err := dyn.Resource(crdResource).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			w, err = dyn.Resource(crdResource).Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		}
		if err != nil {
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				return
			}
			failures++
			if !sleep(ctx, delay(failures)) {
				return
			}
			continue
		}
		if failures > 0 || rewatch {
			// Changes between the previous watch and this list went
			// unseen: rediscover once.
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		rewatch = true
		started, events := time.Now(), 0
		for range w.ResultChan() {
			events++
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		w.Stop()
		if events == 0 && time.Since(started) < time.Second {
			// Closed at once: a server that cannot keep the watch open.
			// A pause, rather than a loop of requests.
			failures++
			if !sleep(ctx, delay(failures)) {
				return
			}
			continue
		}
		failures = 0
	}
}
