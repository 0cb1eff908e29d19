package manifests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/kubesvc/kubesvc/internal/agent/ops"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Cache is what the handlers read: the control plane's cache.
type Cache interface {
	// Streams returns the streams of the accounts: the kinds each caches.
	Streams(ctx context.Context, accounts []string) ([]store.ResumePoint, error)
	GetObject(ctx context.Context, key store.ObjectKey) (store.Object, error)
	ListObjects(ctx context.Context, q store.Query) ([]store.Object, error)
}

// Handler serves the manifest reads.
type Handler struct {
	cache Cache
	kube  Kubernetes // nil: no Pod logs (property files)
	log   *slog.Logger
}

// New returns a Handler reading cache, and Pods' logs through kube (nil:
// none); log gets the read errors.
func New(cache Cache, kube Kubernetes, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cache: cache, kube: kube, log: log}
}

// Routes registers the endpoints on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /manifests/{account}/{name}", httpapi.Query(h.getManifest, "includeEvents"))
	mux.HandleFunc("GET /manifests/{account}/{location}/{name}", httpapi.Query(h.getManifest, "includeEvents"))
	mux.HandleFunc("GET /manifests/{account}/{location}/{kind}/cluster/{app}/{cluster}", httpapi.Query(h.getCluster))
	mux.HandleFunc("GET /manifests/{account}/{location}/{kind}/cluster/{app}/{cluster}/dynamic/{criteria}", httpapi.Query(h.getDynamic))
	mux.HandleFunc("GET /instances/{account}/{region}/{id}/console", httpapi.Query(h.getConsole, "provider"))
	mux.HandleFunc("POST /cache/kubernetes/manifest", httpapi.Query(h.postRefresh))
	mux.HandleFunc("GET /cache/kubernetes/manifest", httpapi.Query(h.getPendingRefreshes))
	mux.HandleFunc("GET /applications/{app}/jobs/{account}/{location}/{id}", httpapi.Query(h.getJob))
	mux.HandleFunc("DELETE /applications/{app}/jobs/{account}/{location}/{id}", httpapi.Query(h.deleteJob))
	mux.HandleFunc("GET /applications/{app}/jobs/{account}/{location}/{id}/{file}", httpapi.Query(h.getJobProperties))
	mux.HandleFunc("GET /applications/{app}/kubernetes/pods/{account}/{namespace}/{pod}/{file}", httpapi.Query(h.getPodProperties))
}

// manifest is Clouddriver's KubernetesManifestContainer.
type manifest struct {
	Account   string            `json:"account"`
	Name      string            `json:"name"`
	Location  string            `json:"location"`
	Moniker   moniker           `json:"moniker"`
	Manifest  json.RawMessage   `json:"manifest"`
	Status    Status            `json:"status"`
	Artifacts []ops.Artifact    `json:"artifacts"`
	Events    []json.RawMessage `json:"events"`
	Warnings  []any             `json:"warnings"`
	Metrics   []any             `json:"metrics"`
}

// moniker is Spinnaker's moniker of an object, from its annotations.
type moniker struct {
	App      string `json:"app,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	Stack    string `json:"stack,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Sequence *int   `json:"sequence,omitempty"`
}

// coordinates name an object as Clouddriver's KubernetesCoordinates.
type coordinates struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// location is the namespace of a request's {location}: "_" (Clouddriver's
// placeholder) and no segment at all mean cluster-scoped.
func location(r *http.Request) string {
	if l := r.PathValue("location"); l != "_" {
		return l
	}
	return ""
}

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request) {
	includeEvents := true
	switch v := r.URL.Query().Get("includeEvents"); v {
	case "", "true":
	case "false":
		includeEvents = false
	default:
		httpapi.WriteError(w, http.StatusBadRequest, "includeEvents: %q is not true or false", v)
		return
	}
	account, loc := r.PathValue("account"), location(r)
	if err := checkLocation(loc); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	kind, name, err := fullName(r.PathValue("name"))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	res, ok := h.resolve(w, r, account, kind)
	if !ok {
		return
	}
	ns := loc
	if !res.Namespaced {
		ns = ""
	} else if ns == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "location: required for %s, a namespaced kind (GET /manifests/{account}/{namespace}/{kind name})", kindName(res))
		return
	}
	o, err := h.cache.GetObject(r.Context(), store.ObjectKey{Account: account, Group: res.Group, Kind: res.Kind, Namespace: ns, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		where := "cluster-scoped"
		if ns != "" {
			where = fmt.Sprintf("in namespace %q", ns)
		}
		httpapi.WriteError(w, http.StatusNotFound, "no cached %s %q %s in account %q", kindName(res), name, where, account)
		return
	}
	if err != nil {
		h.fail(w, r, "read a cached object", err)
		return
	}
	m, err := h.container(r.Context(), o, res, includeEvents)
	if err != nil {
		h.fail(w, r, "read a cached object's events", err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, m)
}

// resolve finds the cached kind a request names, or answers the error.
func (h *Handler) resolve(w http.ResponseWriter, r *http.Request, account, kind string) (store.Resource, bool) {
	streams, err := h.cache.Streams(r.Context(), []string{account})
	if err != nil {
		h.fail(w, r, "read an account's streams", err)
		return store.Resource{}, false
	}
	res, err := resolveKind(account, kind, streams)
	if err != nil {
		httpapi.WriteError(w, http.StatusNotFound, "%v", err)
		return store.Resource{}, false
	}
	return res, true
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	if httpapi.Interrupted(w, r) {
		return
	}
	h.log.Error("manifests: cannot "+what, "path", r.URL.Path, "err", err)
	httpapi.WriteError(w, http.StatusInternalServerError, "cannot read the cache")
}

// meta is what the handlers read of an object besides its status.
type meta struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name              string            `json:"name"`
		Namespace         string            `json:"namespace"`
		Annotations       map[string]string `json:"annotations"`
		CreationTimestamp string            `json:"creationTimestamp"`
	} `json:"metadata"`
	// Spec is left raw: a custom resource's may be anything.
	Spec json.RawMessage `json:"spec"`
}

// replicas is spec.replicas, -1 when there is none (or it is not an
// integer), as Clouddriver sorts objects by size.
func (m meta) replicas() int64 {
	var spec struct {
		Replicas *int64 `json:"replicas"`
	}
	if json.Unmarshal(m.Spec, &spec) != nil || spec.Replicas == nil {
		return -1
	}
	return *spec.Replicas
}

// container builds the answer for one cached object.
func (h *Handler) container(ctx context.Context, o store.Object, res store.Resource, includeEvents bool) (manifest, error) {
	var md meta
	var body map[string]any
	if err := json.Unmarshal(o.JSON, &md); err != nil {
		return manifest{}, fmt.Errorf("decode cached %s %s: %w", o.Kind, o.Name, err)
	}
	if err := json.Unmarshal(o.JSON, &body); err != nil {
		return manifest{}, fmt.Errorf("decode cached %s %s: %w", o.Kind, o.Name, err)
	}
	full := kindName(res) + " " + o.Name
	m := manifest{
		Account: o.Account, Name: full, Location: o.Namespace,
		Moniker:   monikerOf(md.Metadata.Annotations, o.Application, full),
		Manifest:  o.JSON,
		Status:    StatusOf(o.Group, o.Kind, o.JSON),
		Artifacts: ops.FindArtifacts(body, o.Namespace),
		Events:    []json.RawMessage{}, Warnings: []any{}, Metrics: []any{},
	}
	if m.Artifacts == nil {
		m.Artifacts = []ops.Artifact{}
	}
	if includeEvents && o.Namespace != "" {
		ev, err := h.events(ctx, o)
		if err != nil {
			return manifest{}, err
		}
		m.Events = ev
	}
	return m, nil
}

// monikerOf reads the moniker annotations; the application falls back to
// the cache's (the app.kubernetes.io/name label), the cluster to the
// object's "kind name". (Clouddriver's namer would parse the object's name
// as a Spinnaker name, and take a ReplicaSet's sequence from its
// Deployment revision; Orca does not read the moniker.)
func monikerOf(ann map[string]string, app, full string) moniker {
	m := moniker{
		App: ann[ops.AnnotationMonikerApplication], Cluster: ann[ops.AnnotationMonikerCluster],
		Stack: ann[ops.AnnotationMonikerStack], Detail: ann[ops.AnnotationMonikerDetail],
	}
	if m.App == "" {
		m.App = app
	}
	if m.Cluster == "" {
		m.Cluster = full
	}
	if n, err := strconv.Atoi(ann[ops.AnnotationMonikerSequence]); err == nil {
		m.Sequence = &n
	}
	return m
}
