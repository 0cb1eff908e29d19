package peers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/controlplane"
)

// KubernetesConfig configures discovery through EndpointSlices
// (kubesvc.cluster-kubernetes.*).
type KubernetesConfig struct {
	Client    kubernetes.Interface
	Namespace string
	// ServiceNamePrefix selects the Services (default spin-clouddriver).
	ServiceNamePrefix string
	// PortName is the Service port of the replicas' REST API (default http).
	PortName string
	// Scheme of the peers' URLs: "https" when the replicas serve their
	// REST API over TLS (server.ssl), else (default) "http".
	Scheme string
	Log    *slog.Logger
}

// Kubernetes discovers peers from the EndpointSlices of Services named with
// ServiceNamePrefix, kept current by a watch.
type Kubernetes struct {
	cfg KubernetesConfig

	mu     sync.Mutex // guards slices
	slices map[string]sliceState
	synced chan struct{}
}

type sliceState struct {
	peers   []controlplane.Peer
	updated time.Time
}

// NewKubernetes returns the discovery; Run starts it.
func NewKubernetes(cfg KubernetesConfig) *Kubernetes {
	if cfg.ServiceNamePrefix == "" {
		cfg.ServiceNamePrefix = "spin-clouddriver"
	}
	if cfg.Scheme == "" {
		cfg.Scheme = "http"
	}
	if cfg.PortName == "" {
		cfg.PortName = "http"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Kubernetes{cfg: cfg, slices: map[string]sliceState{}, synced: make(chan struct{})}
}

// Routes registers nothing (the control plane serves /armory/clouddrivers).
func (k *Kubernetes) Routes(*http.ServeMux) {}

// CheckAccess verifies, as `kubectl auth can-i` would, that the
// credentials may list and watch EndpointSlices in the namespace.
func (k *Kubernetes) CheckAccess(ctx context.Context) error {
	for _, verb := range []string{"list", "watch"} {
		review, err := k.cfg.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: k.cfg.Namespace, Verb: verb, Group: discoveryv1.GroupName, Resource: "endpointslices",
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("peers: check permission to %s endpointslices in %q: %w", verb, k.cfg.Namespace, err)
		}
		if !review.Status.Allowed {
			return fmt.Errorf("peers: not allowed to %s endpointslices.discovery.k8s.io in namespace %q (kubesvc.cluster: kubernetes needs list and watch): %s",
				verb, k.cfg.Namespace, review.Status.Reason)
		}
	}
	return nil
}

// Run checks access, then watches until ctx ends. A permission error is
// returned: the replica cannot find its peers.
func (k *Kubernetes) Run(ctx context.Context) error {
	if err := k.CheckAccess(ctx); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(k.cfg.Client, 0, informers.WithNamespace(k.cfg.Namespace))
	inf := factory.Discovery().V1().EndpointSlices().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.observe(obj, false) },
		UpdateFunc: func(_, obj any) { k.observe(obj, false) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			k.observe(obj, true)
		},
	})
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil // ctx ended
	}
	close(k.synced)
	k.cfg.Log.Info("peers: watching EndpointSlices", "namespace", k.cfg.Namespace, "servicePrefix", k.cfg.ServiceNamePrefix, "peers", len(k.Peers()))
	<-ctx.Done()
	return nil
}

// Synced is closed once the first list is complete.
func (k *Kubernetes) Synced() <-chan struct{} { return k.synced }

func (k *Kubernetes) observe(obj any, deleted bool) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	key := es.Namespace + "/" + es.Name
	service := es.Labels[discoveryv1.LabelServiceName]
	k.mu.Lock()
	defer k.mu.Unlock()
	if deleted || !strings.HasPrefix(service, k.cfg.ServiceNamePrefix) {
		delete(k.slices, key)
		return
	}
	k.slices[key] = sliceState{peers: k.peersOf(es), updated: time.Now()}
}

// peersOf turns a slice's endpoints into peers: one per address, on the
// port named PortName. The id is the endpoint's pod (its replica id),
// else its host name, else its address.
func (k *Kubernetes) peersOf(es *discoveryv1.EndpointSlice) []controlplane.Peer {
	var port int32
	found := false
	for _, p := range es.Ports {
		if p.Name != nil && *p.Name == k.cfg.PortName && p.Port != nil {
			port, found = *p.Port, true
		}
	}
	if !found {
		return nil
	}
	var out []controlplane.Peer
	for _, ep := range es.Endpoints {
		ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
		for _, addr := range ep.Addresses {
			id := addr
			switch {
			case ep.TargetRef != nil && ep.TargetRef.Name != "":
				id = ep.TargetRef.Name
			case ep.Hostname != nil && *ep.Hostname != "":
				id = *ep.Hostname
			}
			out = append(out, controlplane.Peer{ID: id, BaseURL: k.cfg.Scheme + "://" + net.JoinHostPort(addr, strconv.Itoa(int(port))), Ready: ready})
		}
	}
	return out
}

// Peers returns the replicas currently listed, by id (a replica in several
// slices once, ready if any says so).
func (k *Kubernetes) Peers() []controlplane.Peer {
	k.mu.Lock()
	defer k.mu.Unlock()
	byID := map[string]controlplane.Peer{}
	for _, st := range k.slices {
		for _, p := range st.peers {
			p.LastUpdated = st.updated
			if old, ok := byID[p.ID]; ok && old.Ready && !p.Ready {
				continue
			}
			byID[p.ID] = p
		}
	}
	out := make([]controlplane.Peer, 0, len(byID))
	for _, p := range byID {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ErrNoNamespace is returned when no namespace is configured and none can
// be read from the pod's service account.
var ErrNoNamespace = errors.New("peers: no namespace: set kubesvc.cluster-kubernetes.namespace")
