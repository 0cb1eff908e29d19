package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	// refresh asks a synthetic stream built from discovery (the declared
	// CRDs) to build again; nil for the others.
	refresh func()
}

// streamReport is a stream runner telling its account whether it is
// serving or cannot (refused, or failing since some time).
type streamReport struct {
	id string
	h  streamHealth
}

// streams is the account runner's view of its streams. It is used by the
// serve goroutine only.
type streams struct {
	running  map[string]*runningStream
	reported map[string]streamHealth // last report of each running stream
}

const (
	// unreachableGrace is how long a stream may fail for a reason other
	// than a refusal (the API server unreachable) before the account
	// says so: a watch reconnecting does not make the account flap.
	unreachableGrace = 5 * time.Second
	// statusEvery is the least time between two status messages (and
	// their log lines) of a WATCHING account; the last one is always
	// sent. Fifty CRDs deleted at once are one status, not fifty.
	statusEvery = time.Second
	// namedStreams is how many failing streams a status message names.
	namedStreams = 5
	// sampleLen bounds the one error message a status quotes.
	sampleLen = 512
)

func (r *accountRunner) serve(ctx context.Context) error {
	select {
	case acct := <-r.meta: // an edit made while the last attempt failed
		r.acct = acct
	default:
	}
	facts := r.sess.agent.facts.get(r.acct)
	var cfg *rest.Config
	var src *configSource // what the clients follow, checked every kubeconfigPollEvery
	var info *kubesvcv1.AccountInfo
	if facts != nil {
		// Learnt by a recent session: a reconnection resumes at once. The
		// description is the account's as it is now.
		cfg, src, info = facts.cfg, facts.src, proto.Clone(facts.info).(*kubesvcv1.AccountInfo)
		r.acct.fillInfo(info)
	} else {
		var err error
		if cfg, src, err = r.sess.agent.clientConfig(r.acct, r.log); err != nil {
			return err
		}
		if info, err = probe(ctx, r.acct, cfg); err != nil {
			return err
		}
		r.acct.fillInfo(info)
		r.sess.agent.facts.probed(r.acct, cfg, src, info)
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
	st := &streams{running: map[string]*runningStream{}, reported: map[string]streamHealth{}}
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
			report: func(h streamHealth) {
				select {
				case reports <- streamReport{id: id, h: h}:
				case <-sctx.Done():
				}
			},
			rediscover: trigger,
			memo:       refusalMemo{facts: r.sess.agent.facts, acct: r.acct},
		}
		if isSynthetic(k) {
			// The stream's goroutine keeps its own copy: r.acct changes
			// with edits of the description (not of what is streamed).
			acct := r.acct
			syn := &syntheticRunner{streamRunner: runner, build: func(context.Context) ([]*unstructured.Unstructured, error) {
				return syntheticNamespaces(acct), nil
			}}
			if k.GetResource().GetKind() == syntheticCRDResource.GetKind() {
				// Built again after each rediscovery: a CRD created,
				// changed or deleted, and the periodic one.
				refresh := make(chan struct{}, 1)
				syn.refresh = refresh
				rs.refresh = func() {
					select {
					case refresh <- struct{}{}:
					default:
					}
				}
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
	// The CRDs' resource version before the first discovery: the CRD
	// watch starts from there, so that a CRD created meanwhile is not
	// missed until the periodic rediscovery.
	crdFrom := crdResourceVersion(ctx, dyn)
	if err := reconcile(); err != nil {
		return err
	}

	crdChanged := make(chan struct{}, 1)
	if !r.acct.kindsAllFound(lastKeys) {
		wg.Go(func() { watchCRDs(ctx, dyn, crdFrom, crdChanged, retryDelay) })
	}
	// After a rediscovery, the streams built from discovery build again.
	refreshed := func() {
		for _, s := range st.running {
			if s.refresh != nil {
				s.refresh()
			}
		}
	}
	periodic := time.NewTicker(rediscoverEvery)
	defer periodic.Stop()
	// The kubeconfig file (or CA file) read again even while every request
	// succeeds: rotated credentials are used before the old ones expire,
	// and a file naming another server moves the account while the old
	// one still answers.
	var poll <-chan time.Time
	if src != nil {
		t := time.NewTicker(r.acct.kubeconfigPoll())
		defer t.Stop()
		poll = t.C
	}
	var debounce <-chan time.Time
	// What was last sent: SYNCING until every stream has reported.
	state, lastStatus := kubesvcv1.AccountStatus_SYNCING, ""
	var lastSent time.Time
	var flush <-chan time.Time // a coalesced status due
	var recheck <-chan time.Time
	var recheckAt time.Time
	var disc discoveryFailure
	evaluate := func() {
		now := time.Now()
		sum := st.summary(now, unreachableGrace)
		if !sum.recheck.Equal(recheckAt) {
			// A failure within its grace is due to count.
			recheckAt, recheck = sum.recheck, nil
			if !sum.recheck.IsZero() {
				recheck = time.After(sum.recheck.Sub(now))
			}
		}
		if !sum.done {
			return
		}
		newState, msg := r.describe(sum, lastKeys, disc)
		if newState == state && msg == lastStatus {
			flush = nil
			return
		}
		if wait := statusEvery - now.Sub(lastSent); wait > 0 {
			if flush == nil {
				flush = time.After(wait)
			}
			return
		}
		flush = nil
		// A message logged already (by an earlier session: a control-plane
		// reconnection) is logged again at debug level only.
		level := slog.LevelWarn
		if !r.sess.agent.facts.logStatus(r.acct, msg) {
			level = slog.LevelDebug
		}
		switch {
		case newState == kubesvcv1.AccountStatus_ERROR:
			r.log.Log(ctx, level, "account cannot be served", "status", msg)
		case msg != "":
			r.log.Log(ctx, level, "account watching, with problems", "status", msg)
		case state == kubesvcv1.AccountStatus_ERROR || lastStatus != "":
			r.log.Info("account watching again: every stream is served")
		}
		if len(sum.failing) > 0 {
			r.log.Debug("streams that cannot be served", "streams", sum.full())
		}
		state, lastStatus, lastSent = newState, msg, now
		r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: state, Message: msg, Info: info, Streams: uint32(len(st.running))})
	}
	rediscovered := func(err error, what string) {
		if err == nil {
			disc = discoveryFailure{}
			return
		}
		r.log.Warn(what, "err", err)
		if disc.err == nil {
			disc.since = time.Now()
		}
		disc.err = err
	}
	for {
		evaluate()
		select {
		case <-ctx.Done():
			return nil
		case d := <-r.meta:
			// Its permissions changed: describe it again, same state.
			r.acct = d
			info = proto.Clone(info).(*kubesvcv1.AccountInfo)
			d.fillInfo(info)
			r.sess.agent.rememberInfo(info)
			r.sess.status(ctx, &kubesvcv1.AccountStatus{Account: r.acct.Name, State: state, Message: lastStatus, Info: info, Streams: uint32(len(st.running))})
		case rep := <-reports:
			if _, ok := st.running[rep.id]; ok {
				st.reported[rep.id] = rep.h
			}
		case <-flush:
			flush, lastSent = nil, time.Time{}
		case <-recheck:
			recheck, recheckAt = nil, time.Time{}
		case <-crdChanged:
			debounce = time.After(500 * time.Millisecond)
		case <-rediscover:
			debounce = time.After(500 * time.Millisecond)
		case <-debounce:
			debounce = nil
			rediscovered(reconcile(), "rediscovery failed")
			refreshed()
		case <-periodic.C:
			rediscovered(reconcile(), "periodic rediscovery failed")
			refreshed()
		case <-poll:
			src.refresh()
		}
	}
}

// refusalMemo is a stream's view of its account's refusals remembered
// across sessions.
type refusalMemo struct {
	facts *factsCache
	acct  Account
}

func (m refusalMemo) refused(id string) refusal { return m.facts.refused(m.acct, id) }

func (m refusalMemo) setRefused(id string, r refusal) { m.facts.setRefused(m.acct, id, r) }

// discoveryFailure is a rediscovery failing since some time (err nil: the
// last one succeeded).
type discoveryFailure struct {
	err   error
	since time.Time
}

// describe is the account's state and status message from its streams'
// summary: ERROR when no stream can be served, WATCHING otherwise, with a
// bounded message naming what fails and what an operator most often has
// to change: credentials limited to some namespaces cannot list
// cluster-wide (or, with namespaces set, cluster-scoped kinds), and a kind
// named in kinds that the API server does not serve is watched only once
// it is.
func (r *accountRunner) describe(sum streamsSummary, keys []*kubesvcv1.StreamKey, disc discoveryFailure) (kubesvcv1.AccountStatus_State, string) {
	state := kubesvcv1.AccountStatus_WATCHING
	if sum.total > 0 && len(sum.failing) == sum.total {
		state = kubesvcv1.AccountStatus_ERROR
	}
	var parts []string
	if u := sum.unreachable; u.count > 0 {
		what := fmt.Sprintf("%d of %d streams failing since %s", u.count, sum.total, u.since.UTC().Format(time.RFC3339))
		if u.network {
			what = fmt.Sprintf("API server unreachable since %s (%d of %d streams)", u.since.UTC().Format(time.RFC3339), u.count, sum.total)
		}
		parts = append(parts, what+": "+u.sample)
	}
	if f := sum.refused; f.count > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d streams cannot be served (%s): e.g. %s", f.count, sum.total, f.names(), f.sample))
		if len(r.acct.Namespaces) == 0 && sum.clusterScope {
			parts[len(parts)-1] += "; if the account's credentials may read only some namespaces, list them in its namespaces"
		}
		if len(r.acct.Namespaces) > 0 && len(sum.clusterKinds) > 0 {
			parts[len(parts)-1] += "; the credentials may not read cluster-scoped kinds (" + namesOf(sum.clusterKinds) +
				"): set onlyNamespacedResources, or leave them out with kinds or omitKinds"
		}
	}
	if disc.err != nil {
		parts = append(parts, fmt.Sprintf("discovery failing since %s: %s", disc.since.UTC().Format(time.RFC3339), bounded(disc.err.Error())))
	}
	if missing := r.acct.missingKinds(keys); len(missing) > 0 {
		parts = append(parts, "kinds not served by the API server (a typo, or a custom resource not installed yet: watched once it is): "+namesOf(missing))
	}
	return state, strings.Join(parts, "; ")
}

// failures is one kind of stream failure in a summary.
type failures struct {
	count   int
	first   []string  // the first streams' names, sorted
	sample  string    // one stream's name and error
	since   time.Time // the earliest failure
	network bool      // the sample is a network error: the API server unreachable
}

func (f failures) names() string { return namesOf(f.first) + f.more() }

func (f failures) more() string {
	if f.count > len(f.first) {
		return fmt.Sprintf(" and %d more", f.count-len(f.first))
	}
	return ""
}

// namesOf joins names, the first namedStreams of them.
func namesOf(names []string) string {
	if len(names) > namedStreams {
		return strings.Join(names[:namedStreams], ", ") + fmt.Sprintf(" and %d more", len(names)-namedStreams)
	}
	return strings.Join(names, ", ")
}

// bounded cuts an error message to sampleLen bytes (at a rune boundary).
func bounded(msg string) string {
	if len(msg) <= sampleLen {
		return msg
	}
	cut := sampleLen
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}

// streamsSummary is an account's streams as they last reported.
type streamsSummary struct {
	// done: every stream has reported, and none failing within its grace
	// without having been served.
	done  bool
	total int
	// failing names the streams that cannot be served (refused, or
	// failing beyond the grace), sorted, with their errors in errs.
	failing              []string
	errs                 map[string]error
	refused, unreachable failures
	// clusterScope: a refusal at the cluster scope; clusterKinds: the
	// cluster-scoped kinds forbidden.
	clusterScope bool
	clusterKinds []string
	// recheck is when a failure within its grace is due to count (zero:
	// none).
	recheck time.Time
}

// full lists every failing stream with its error, for the debug log.
func (s streamsSummary) full() string {
	out := make([]string, 0, len(s.failing))
	for _, name := range s.failing {
		out = append(out, name+": "+s.errs[name].Error())
	}
	return strings.Join(out, "; ")
}

// streamName names a stream for people: resource.group, " in NS" for a
// namespace's stream.
func streamName(k *kubesvcv1.StreamKey) string {
	name := k.GetResource().GetResource()
	if g := k.GetResource().GetGroup(); g != "" {
		name += "." + g
	}
	if ns := k.GetNamespace(); ns != "" {
		name += " in " + ns
	}
	return name
}

// summary sums up the running streams' reports at now: a refusal counts at
// once, another failure once it has lasted grace (until then, as the
// stream was: served, or not reported yet).
func (st *streams) summary(now time.Time, grace time.Duration) streamsSummary {
	sum := streamsSummary{done: true, total: len(st.running), errs: map[string]error{}}
	type failing struct {
		name string
		h    streamHealth
		key  *kubesvcv1.StreamKey
	}
	var refused, unreachable []failing
	for id, s := range st.running {
		h, ok := st.reported[id]
		if !ok {
			sum.done = false
			continue
		}
		if h.err == nil {
			continue
		}
		name := id
		if s.key != nil {
			name = streamName(s.key)
		}
		f := failing{name: name, h: h, key: s.key}
		switch {
		case h.refused:
			refused = append(refused, f)
		case now.Sub(h.since) >= grace:
			unreachable = append(unreachable, f)
		default:
			if due := h.since.Add(grace); sum.recheck.IsZero() || due.Before(sum.recheck) {
				sum.recheck = due
			}
			if !h.served {
				sum.done = false
			}
		}
	}
	fill := func(fs []failing, into *failures) {
		slices.SortFunc(fs, func(a, b failing) int { return strings.Compare(a.name, b.name) })
		into.count = len(fs)
		for i, f := range fs {
			sum.failing = append(sum.failing, f.name)
			sum.errs[f.name] = f.h.err
			if i < namedStreams {
				into.first = append(into.first, f.name)
			}
			if into.since.IsZero() || f.h.since.Before(into.since) {
				into.since = f.h.since
			}
			msg := f.h.err.Error()
			if strings.Contains(msg, "at the cluster scope") {
				sum.clusterScope = true
			}
			if apierrors.IsForbidden(f.h.err) && f.key != nil && !f.key.GetResource().GetNamespaced() {
				sum.clusterKinds = append(sum.clusterKinds, f.name)
			}
		}
		if len(fs) > 0 {
			into.sample = fs[0].name + ": " + bounded(fs[0].h.err.Error())
			var netErr net.Error
			into.network = errors.As(fs[0].h.err, &netErr)
		}
	}
	fill(refused, &sum.refused)
	fill(unreachable, &sum.unreachable)
	slices.Sort(sum.failing)
	return sum
}

// watchCRDs signals changed whenever a CustomResourceDefinition is added,
// changed or deleted after resource version from (the current one if
// from is empty), until ctx ends. Without permission to watch CRDs (or
// without the API) it gives up quietly and periodic rediscovery remains;
// any other failure (an API server restarting) is retried after
// delay(failures), for as long as it lasts. It watches from the current
// resource version (read with a one-item list), so the CRDs that exist
// already cause no rediscovery: with many accounts, a reconnection does
// not turn into one discovery per account.
func watchCRDs(ctx context.Context, dyn dynamic.Interface, from string, changed chan<- struct{}, delay func(failures int) time.Duration) {
	failures, rewatch := 0, false
	for ctx.Err() == nil {
		var w watch.Interface
		var err error
		if from != "" {
			w, err = dyn.Resource(crdResource).Watch(ctx, metav1.ListOptions{ResourceVersion: from})
			from = ""
			if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) {
				// Expired, or the server failing: what changed after
				// from is unknown; the next watch's success rediscovers.
				rewatch = true
				continue
			}
		} else {
			var list *unstructured.UnstructuredList
			list, err = dyn.Resource(crdResource).List(ctx, metav1.ListOptions{Limit: 1})
			if err == nil {
				w, err = dyn.Resource(crdResource).Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
			}
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

// crdResourceVersion is the current resource version of the
// CustomResourceDefinitions (a one-item list), "" when it cannot be read
// (watchCRDs then starts from the version current when it starts).
func crdResourceVersion(ctx context.Context, dyn dynamic.Interface) string {
	list, err := dyn.Resource(crdResource).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return ""
	}
	return list.GetResourceVersion()
}
