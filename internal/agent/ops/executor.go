package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Operation types, as Clouddriver names them in POST /kubernetes/ops.
const (
	OpDeployManifest         = "deployManifest"
	OpDeleteManifest         = "deleteManifest"
	OpScaleManifest          = "scaleManifest"
	OpPatchManifest          = "patchManifest"
	OpUndoRolloutManifest    = "undoRolloutManifest"
	OpPauseRolloutManifest   = "pauseRolloutManifest"
	OpResumeRolloutManifest  = "resumeRolloutManifest"
	OpRollingRestartManifest = "rollingRestartManifest"
	OpRunJob                 = "runJob"
	OpEnableManifest         = "enableManifest"
	OpDisableManifest        = "disableManifest"
)

// SSAMode is a server-side-apply policy (kubernetes.serverSideApply.enabled).
type SSAMode string

// Server-side-apply policies.
const (
	// SSAAlways applies every object server-side; annotations are ignored.
	SSAAlways SSAMode = "always"
	// SSANever applies every object client-side; annotations are ignored.
	SSANever SSAMode = "never"
	// SSAAllowed applies client-side unless the object's
	// strategy.spinnaker.io/server-side-apply (or
	// agent-k8s.armory.io/serverside-apply) annotation asks for server-side
	// apply ("true", "force-conflicts", "enabled"): the Scale Agent's
	// default.
	SSAAllowed SSAMode = "allowed"
	// SSAPreferred applies server-side unless the object's annotation asks
	// for client-side apply ("false", "disabled"); a kind's own always,
	// never or allowed decides first. The default (an empty mode).
	SSAPreferred SSAMode = "preferred"
)

// Retries is kubernetes.retries.*: how failed API requests are retried.
type Retries struct {
	Enabled bool
	// MaxRetries is the number of retries after the first attempt.
	MaxRetries int
	// BackOff is the wait before each retry.
	BackOff time.Duration
	// RetryAnyError retries every API error, not only retryable ones.
	RetryAnyError bool
	// RetryableErrors are substrings of retryable error messages, matched
	// case-insensitively. Nil means the defaults; an empty non-nil slice none.
	// Conflicts, 429 and 5xx answers are retryable whatever this says.
	RetryableErrors []string
}

// DefaultRetries returns the documented defaults: enabled, 3 retries, 3 s
// apart, on "timeout" and "deadline exceeded" besides conflicts, 429 and 5xx.
func DefaultRetries() Retries {
	return Retries{Enabled: true, MaxRetries: 3, BackOff: 3 * time.Second,
		RetryableErrors: []string{"timeout", "deadline exceeded"}}
}

// Options configure an Executor. The zero value is usable.
type Options struct {
	// FieldManager names the executor in managedFields. Default "kubesvc".
	FieldManager string
	// ServerSideApply is the apply policy; empty means SSAPreferred.
	ServerSideApply SSAMode
	// SSAKinds sets the policy per kind (e.g. "Deployment", matched
	// case-insensitively; an empty mode sets none) when ServerSideApply is
	// SSAAllowed or SSAPreferred; a global SSAAlways or SSANever decides
	// for every kind.
	SSAKinds map[string]SSAMode
	// Retries configures retrying API requests; nil means DefaultRetries().
	Retries *Retries
	// DefaultNamespace is used for namespaced objects and targets that name
	// no namespace. Default "default".
	DefaultNamespace string
	// DeleteWaitTimeout bounds how long strategy.spinnaker.io/recreate waits
	// for the old object to disappear. Default 2 minutes.
	DeleteWaitTimeout time.Duration
	// Logger receives one line per write. Default: discarded.
	Logger *slog.Logger
	// Now is the clock for kubectl.kubernetes.io/restartedAt. Default time.Now.
	Now func() time.Time
	// Versions serialises deploys of one versioned artifact; executors of
	// one agent share it. Default: one of the executor's own.
	Versions *VersionLocks
}

// Executor executes Clouddriver Kubernetes operations against one cluster
// with its own credentials. It is safe for concurrent use.
type Executor struct {
	opts     Options
	retries  Retries
	ssaKinds map[string]SSAMode

	dyn    dynamic.Interface
	kube   kubernetes.Interface
	meta   metadata.Interface
	disc   discovery.CachedDiscoveryInterface
	mapper meta.ResettableRESTMapper

	resetMu   sync.Mutex
	lastReset time.Time
}

// New builds an Executor for the cluster cfg points at. Nothing is
// requested from the cluster until the first operation.
func New(cfg *rest.Config, opts Options) (*Executor, error) {
	if cfg == nil {
		return nil, errors.New("ops: nil rest.Config")
	}
	if opts.FieldManager == "" {
		opts.FieldManager = "kubesvc"
	}
	switch opts.ServerSideApply {
	case "":
		opts.ServerSideApply = SSAPreferred
	case SSAAlways, SSANever, SSAAllowed, SSAPreferred:
	default:
		return nil, fmt.Errorf("ops: server-side apply mode must be always, never or allowed, got %q", opts.ServerSideApply)
	}
	if opts.Versions == nil {
		opts.Versions = &VersionLocks{}
	}
	e := &Executor{opts: opts, ssaKinds: map[string]SSAMode{}}
	for k, m := range opts.SSAKinds {
		if m == "" {
			continue // no policy of its own
		}
		if m != SSAAlways && m != SSANever && m != SSAAllowed {
			return nil, fmt.Errorf("ops: server-side apply mode of kind %s must be always, never or allowed, got %q", k, m)
		}
		e.ssaKinds[strings.ToLower(k)] = m
	}
	e.retries = DefaultRetries()
	if opts.Retries != nil {
		e.retries = *opts.Retries
		if e.retries.RetryableErrors == nil {
			e.retries.RetryableErrors = DefaultRetries().RetryableErrors
		}
		if e.retries.MaxRetries < 0 || e.retries.BackOff < 0 {
			return nil, fmt.Errorf("ops: retries: maxRetries and backOff must not be negative")
		}
	}
	if e.opts.DefaultNamespace == "" {
		e.opts.DefaultNamespace = "default"
	}
	if e.opts.DeleteWaitTimeout <= 0 {
		e.opts.DeleteWaitTimeout = 2 * time.Minute
	}
	if e.opts.Logger == nil {
		e.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if e.opts.Now == nil {
		e.opts.Now = time.Now
	}

	cfg = rest.CopyConfig(cfg)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("ops: HTTP client: %w", err)
	}
	if e.dyn, err = dynamic.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("ops: dynamic client: %w", err)
	}
	if e.kube, err = kubernetes.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("ops: clientset: %w", err)
	}
	if e.meta, err = metadata.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("ops: metadata client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("ops: discovery client: %w", err)
	}
	e.disc = memory.NewMemCacheClient(dc)
	e.mapper = restmapper.NewDeferredDiscoveryRESTMapper(e.disc)
	return e, nil
}

// operation is a parsed, statically valid description.
type operation interface {
	// check validates the description against the cluster (kinds served,
	// scopes) without changing anything.
	check(ctx context.Context, e *Executor) error
	// run checks, then executes.
	run(ctx context.Context, e *Executor) (Result, error)
}

var parsers = map[string]func([]byte) (operation, error){
	OpDeployManifest:         parseDeploy,
	OpRunJob:                 parseRunJob,
	OpDeleteManifest:         parseDelete,
	OpScaleManifest:          parseScale,
	OpPatchManifest:          parsePatch,
	OpUndoRolloutManifest:    parseUndo,
	OpPauseRolloutManifest:   parseRollout(OpPauseRolloutManifest),
	OpResumeRolloutManifest:  parseRollout(OpResumeRolloutManifest),
	OpRollingRestartManifest: parseRollout(OpRollingRestartManifest),
	OpEnableManifest:         parseTraffic(true),
	OpDisableManifest:        parseTraffic(false),
	OpCleanupArtifacts:       parseCleanup,
}

// OperationTypes lists the supported operation types, sorted.
func OperationTypes() []string {
	var ts []string
	for t := range parsers {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

func parse(opType string, payload []byte) (operation, error) {
	p, ok := parsers[opType]
	if !ok {
		return nil, &ValidationError{Op: opType, Err: ErrUnknownOperation,
			Message: fmt.Sprintf("unknown operation type %q; supported: %s", opType, strings.Join(OperationTypes(), ", "))}
	}
	op, err := p(payload)
	return op, withOp(opType, err)
}

// Validate checks a description without a cluster: JSON shape, required
// fields, manifest structure. Kinds are checked by (*Executor).Validate.
// Problems are reported as *ValidationError.
func Validate(opType string, payload []byte) error {
	_, err := parse(opType, payload)
	return err
}

// Validate checks a description like the package-level Validate, then
// against the cluster's discovery (kinds served, namespaced or not). It
// reads discovery only and changes nothing.
func (e *Executor) Validate(ctx context.Context, opType string, payload []byte) error {
	op, err := parse(opType, payload)
	if err != nil {
		return err
	}
	return withOp(opType, op.check(ctx, e))
}

// Execute validates and executes one operation; payload is the JSON
// description (the value of {"deployManifest": {...}}). Input problems,
// found before anything is written, are *ValidationError; API errors are
// wrapped with %w (apierrors.IsNotFound etc. work on the result).
func (e *Executor) Execute(ctx context.Context, opType string, payload []byte) (Result, error) {
	op, err := parse(opType, payload)
	if err != nil {
		return Result{}, err
	}
	res, err := op.run(ctx, e)
	if err != nil {
		return Result{}, withOp(opType, shorten(err))
	}
	return res, nil
}
