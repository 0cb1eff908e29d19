package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/agent/scrub"
)

// listPageSize bounds the objects one list page holds in memory.
const listPageSize = 500

// streamRunner lists and watches one stream and emits its changes. It keeps
// no copy of the objects: only the last resource version it saw.
type streamRunner struct {
	key      *kubesvcv1.StreamKey
	client   dynamic.ResourceInterface
	selector string // field selector for omitNamespaces
	resumeRV string // from the control plane, "" to list first
	emit     func(context.Context, *kubesvcv1.Change) error
	budget   *budget
	scrubber *scrub.Scrubber
	stats    *Stats
	log      *slog.Logger
	// report tells the account whether the stream is served or not
	// (refused, or failing since some time); it is called when that
	// changes.
	report func(streamHealth)
	// rediscover asks the account to run discovery again (the resource
	// is gone or changed).
	rediscover func()

	reported     bool
	lastReported streamHealth
	// memo keeps the stream's refusal across sessions (nil: none).
	memo interface {
		refused(id string) refusal
		setRefused(id string, r refusal)
	}
	// swept is the refusal whose empty sync was sent (the control plane
	// dropped the stream's objects): a retry refused the same way sends
	// nothing.
	swept string
}

// streamHealth is what a stream runner last told its account.
type streamHealth struct {
	err error // nil: served
	// refused: the API server refused the stream (forbidden,
	// unauthorized, not found), shown at once; any other error (the API
	// server unreachable) only once it has lasted a grace period.
	refused bool
	since   time.Time // failing since (err set)
	served  bool      // the stream was served at some point
}

// isRefusal reports whether err is the API server refusing the request
// (as opposed to not answering it): retrying the same request is refused
// again until the cluster or the credentials change.
func isRefusal(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err)
}

// sweepsCache reports whether a list failing with err means the agent
// cannot see the stream's objects at all, so the control plane must not
// keep serving them: forbidden, or the kind no longer served. Unauthorized
// (credentials expiring or being rotated) and errors reaching the API
// server keep the cache as it is.
func sweepsCache(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err)
}

var errGone = errors.New("resource version expired")

// maxWatchFailures is how many consecutive watch failures from one
// resource version the runner tolerates before it lists again.
const maxWatchFailures = 3

// run keeps the stream flowing until ctx ends: list (or resume), watch,
// re-watch from the last version after a break, relist after 410 Gone or
// when the version keeps failing.
func (r *streamRunner) run(ctx context.Context) error {
	rv := r.resumeRV
	if rv != "" {
		r.stats.Resumes.Add(1)
	}
	failures := 0
	lastFailure := "" // the list error last logged at warning level
	id := streamID(r.key)
	if r.memo != nil {
		// Refused in an earlier session of the same account: listed at
		// once, but neither logged again nor backed off from scratch.
		prev := r.memo.refused(id)
		failures, lastFailure = prev.failures, prev.msg
	}
	for ctx.Err() == nil {
		if rv == "" {
			listRV, err := r.list(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failures++
				r.countListFailure(err)
				r.failed(err)
				// Once at warning level, again only when the error
				// changes: a forbidden kind is retried for ever.
				if msg := err.Error(); msg != lastFailure {
					lastFailure = msg
					r.log.Warn("list failed", "err", err, "attempt", failures)
				} else {
					r.log.Debug("list failed again", "err", err, "attempt", failures)
				}
				if r.memo != nil && isRefusal(err) {
					r.memo.setRefused(id, refusal{msg: err.Error(), failures: failures})
				}
				if sweepsCache(err) && r.swept != err.Error() {
					// What the agent cannot see is not served from the
					// cache either: an empty sync drops the stream's
					// objects, once per refusal (retries send nothing).
					if err := r.emptySync(ctx); err != nil {
						return nil // the session is ending
					}
					r.swept = err.Error()
					r.log.Info("stream refused: its cached objects are removed until it can be listed again", "err", err)
				}
				if !sleep(ctx, retryDelay(failures)) {
					return nil
				}
				continue
			}
			rv = listRV
			if lastFailure != "" && r.memo != nil {
				r.memo.setRefused(id, refusal{})
			}
			failures, lastFailure, r.swept = 0, "", ""
			r.setReport(nil)
		}
		// The stream counts as served again once a list or a watch
		// succeeds, not before each attempt: a watch failing over and
		// over does not flap between failing and served.
		started := time.Now()
		last, err := r.watch(ctx, rv)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errGone):
			r.log.Info("watch expired; relisting", "resourceVersion", rv)
			rv = ""
			failures = 0
		case apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge), apierrors.IsBadRequest(err), apierrors.IsInvalid(err):
			// A position from another cluster or a restored etcd: list
			// again, after a pause in case the watch itself is refused.
			failures++
			r.log.Warn("cannot watch from this resource version; relisting", "resourceVersion", rv, "err", err)
			rv = ""
			if !sleep(ctx, retryDelay(failures)) {
				return nil
			}
		case err != nil:
			failures++
			r.failed(err)
			r.log.Warn("watch failed", "err", err, "attempt", failures)
			rv = last
			if failures >= maxWatchFailures {
				rv = "" // something is wrong with this position: start over
			}
			if !sleep(ctx, retryDelay(failures)) {
				return nil
			}
		case last == rv && time.Since(started) < time.Second:
			// Closed at once without a change: a server that cannot keep
			// the watch open. A pause, rather than a loop of requests.
			failures++
			r.log.Warn("watch closed at once; pausing before the next", "attempt", failures)
			if !sleep(ctx, retryDelay(failures)) {
				return nil
			}
		default:
			failures = 0
			rv = last
		}
	}
	return nil
}

// failed reports a list or watch error to the account (a refusal at
// once, any other after a grace the account applies); a resource that
// disappeared asks for rediscovery.
func (r *streamRunner) failed(err error) {
	if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		r.rediscover()
	}
	r.setReport(err)
}

// setReport tells the account err (nil: served) when the stream's state
// changes: served or not, refused or not, another error.
func (r *streamRunner) setReport(err error) {
	h := streamHealth{err: err, served: r.lastReported.served || err == nil}
	if err != nil {
		h.refused = isRefusal(err)
		h.since = r.lastReported.since
		if r.lastReported.err == nil {
			h.since = time.Now()
		}
	}
	last := r.lastReported
	if r.reported && (err == nil) == (last.err == nil) && (err == nil || (h.refused == last.refused && err.Error() == last.err.Error())) {
		return
	}
	r.reported, r.lastReported = true, h
	r.report(h)
}

// countListFailure counts a failed list: refused, or any other error.
func (r *streamRunner) countListFailure(err error) {
	if isRefusal(err) {
		r.stats.ListsRefused.Add(1)
	} else {
		r.stats.ListsFailed.Add(1)
	}
}

// emptySync replaces the stream's cached contents with nothing, and no
// resume point (the next session lists it again).
func (r *streamRunner) emptySync(ctx context.Context) error {
	if err := r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_SyncBegin{SyncBegin: &kubesvcv1.SyncBegin{}}}); err != nil {
		return err
	}
	return r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_SyncEnd{SyncEnd: &kubesvcv1.SyncEnd{}}})
}

// list replaces the stream's contents: SyncBegin, every object, SyncEnd.
// SyncBegin goes out with the first page listed: a list refused or failing
// at once leaves the control plane's stream (and its generation) as it
// was. It holds a task budget slot for its whole duration.
func (r *streamRunner) list(ctx context.Context) (string, error) {
	if err := r.budget.acquire(ctx); err != nil {
		return "", err
	}
	defer r.budget.release()
	begun := false
	opts := metav1.ListOptions{Limit: listPageSize, FieldSelector: r.selector}
	for {
		page, err := r.client.List(ctx, opts)
		if err != nil {
			if opts.Continue != "" && (apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) {
				// The continue token expired mid-list: start over with a
				// new generation, so objects listed before and deleted
				// since are swept by this list's SyncEnd.
				r.log.Info("list continuation expired; listing again")
				if !sleep(ctx, time.Second) {
					return "", ctx.Err()
				}
				opts.Continue, begun = "", false
				continue
			}
			return "", fmt.Errorf("list %s: %w", r.key.GetResource().GetResource(), err)
		}
		if !begun {
			if err := r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_SyncBegin{SyncBegin: &kubesvcv1.SyncBegin{}}}); err != nil {
				return "", err
			}
			begun = true
		}
		for i := range page.Items {
			obj, err := r.object(&page.Items[i])
			if err != nil {
				return "", err
			}
			if err := r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_Listed{Listed: obj}}); err != nil {
				return "", err
			}
		}
		if page.GetContinue() == "" {
			rv := page.GetResourceVersion()
			if err := r.emit(ctx, &kubesvcv1.Change{Stream: r.key, Change: &kubesvcv1.Change_SyncEnd{SyncEnd: &kubesvcv1.SyncEnd{ResourceVersion: rv}}}); err != nil {
				return "", err
			}
			r.stats.Relists.Add(1)
			return rv, nil
		}
		opts.Continue = page.GetContinue()
	}
}

// watch streams changes from rv until the watch ends. It returns the last
// resource version seen, and errGone when rv is too old.
func (r *streamRunner) watch(ctx context.Context, rv string) (string, error) {
	timeout := int64(300 + rand.IntN(300)) // spread re-watches like client-go's reflector
	w, err := r.client.Watch(ctx, metav1.ListOptions{
		ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout, FieldSelector: r.selector,
	})
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return rv, errGone
		}
		return rv, fmt.Errorf("watch %s: %w", r.key.GetResource().GetResource(), err)
	}
	defer w.Stop()
	r.setReport(nil) // the API server took the watch
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, nil
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return rv, errGone
				}
				return rv, fmt.Errorf("watch %s: %w", r.key.GetResource().GetResource(), err)
			}
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			change := &kubesvcv1.Change{Stream: r.key}
			switch ev.Type {
			case watch.Bookmark:
				change.Change = &kubesvcv1.Change_Bookmark{Bookmark: &kubesvcv1.Bookmark{ResourceVersion: u.GetResourceVersion()}}
			case watch.Added, watch.Modified, watch.Deleted:
				obj, err := r.object(u)
				if err != nil {
					return rv, err
				}
				if ev.Type == watch.Deleted {
					obj.Json = nil // the key is enough
					change.Change = &kubesvcv1.Change_Deleted{Deleted: obj}
				} else {
					change.Change = &kubesvcv1.Change_Upserted{Upserted: obj}
				}
			default:
				continue
			}
			if err := r.emit(ctx, change); err != nil {
				return rv, err
			}
			rv = u.GetResourceVersion()
		}
	}
}

// object scrubs u and encodes it for the wire. The type comes from the
// stream, not from the object (list items may lack it), so a Secret is
// always recognised as one.
func (r *streamRunner) object(u *unstructured.Unstructured) (*kubesvcv1.Object, error) {
	return wireObject(r.key.GetResource(), u, r.scrubber)
}

// wireObject scrubs u and encodes it as an object of resource res.
func wireObject(res *kubesvcv1.Resource, u *unstructured.Unstructured, scrubber *scrub.Scrubber) (*kubesvcv1.Object, error) {
	apiVersion := res.GetVersion()
	if res.GetGroup() != "" {
		apiVersion = res.GetGroup() + "/" + apiVersion
	}
	u.SetAPIVersion(apiVersion)
	u.SetKind(res.GetKind())
	scrubber.Map(u.Object)
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	labels := u.GetLabels()
	return &kubesvcv1.Object{
		Namespace:       u.GetNamespace(),
		Name:            u.GetName(),
		Uid:             string(u.GetUID()),
		ResourceVersion: u.GetResourceVersion(),
		Json:            data,
		Labels:          labels,
		Application:     applicationOf(u.GetAnnotations(), labels),
	}, nil
}

// applicationOf is the Spinnaker application of an object: the
// moniker.spinnaker.io/application annotation, else the
// app.kubernetes.io/name label, else "".
func applicationOf(annotations, labels map[string]string) string {
	if app := annotations["moniker.spinnaker.io/application"]; app != "" {
		return app
	}
	return labels["app.kubernetes.io/name"]
}

// namespaceSelector excludes omitted namespaces with a field selector; for
// Namespace objects themselves it excludes them by name.
func namespaceSelector(key *kubesvcv1.StreamKey, omit []string) string {
	if len(omit) == 0 {
		return ""
	}
	field := "metadata.namespace"
	switch {
	case key.GetResource().GetGroup() == "" && key.GetResource().GetResource() == "namespaces":
		field = "metadata.name"
	case !key.GetResource().GetNamespaced():
		return ""
	}
	parts := make([]string, 0, len(omit))
	for _, ns := range omit {
		parts = append(parts, field+"!="+ns)
	}
	return strings.Join(parts, ",")
}

func gvr(k *kubesvcv1.StreamKey) schema.GroupVersionResource {
	r := k.GetResource()
	return schema.GroupVersionResource{Group: r.GetGroup(), Version: r.GetVersion(), Resource: r.GetResource()}
}

// retryDelay backs off from 1s to 60s with jitter.
func retryDelay(failures int) time.Duration {
	d := time.Second << min(failures-1, 6)
	d = min(d, time.Minute)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
