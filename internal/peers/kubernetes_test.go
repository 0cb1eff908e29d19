package peers_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/peers"
	"github.com/kubesvc/kubesvc/internal/testenv"
)

func ptr[T any](v T) *T { return &v }

// slice is an EndpointSlice of service with one endpoint per pod: name ->
// address.
func slice(service, name string, port int32, portName string, pods map[string]string, ready bool) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "kubesvc-test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for pod, addr := range pods {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod},
		})
	}
	return es
}

func waitPeers(t *testing.T, d *peers.Kubernetes, want func([]controlplane.Peer) bool, what string) []controlplane.Peer {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := d.Peers()
		if want(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: peers = %+v", what, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Peers follow EndpointSlices created, changed and deleted in a real API
// server; other services and other port names are ignored.
func TestKubernetesDiscovery(t *testing.T) {
	c := testenv.StartForTest(t, testenv.Options{Name: "peers"})
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := "spinnaker"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := peers.NewKubernetes(peers.KubernetesConfig{Client: cs, Namespace: ns, Log: slog.New(slog.DiscardHandler)})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	eps := cs.DiscoveryV1().EndpointSlices(ns)
	mustCreate := func(es *discoveryv1.EndpointSlice) {
		t.Helper()
		if _, err := eps.Create(ctx, es, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(slice("spin-clouddriver", "cd-1", 7002, "http", map[string]string{"cd-a": "10.1.0.1", "cd-b": "10.1.0.2"}, true))
	mustCreate(slice("spin-clouddriver-ro", "cd-ro-1", 7003, "http", map[string]string{"cd-c": "10.1.0.3"}, false))
	mustCreate(slice("spin-echo", "echo-1", 8089, "http", map[string]string{"echo": "10.1.0.9"}, true))
	mustCreate(slice("spin-clouddriver-grpc", "cd-grpc", 9091, "grpc", map[string]string{"cd-z": "10.1.0.8"}, true))

	got := waitPeers(t, d, func(p []controlplane.Peer) bool { return len(p) == 3 }, "three replicas")
	want := []controlplane.Peer{
		{ID: "cd-a", BaseURL: "http://10.1.0.1:7002", Ready: true},
		{ID: "cd-b", BaseURL: "http://10.1.0.2:7002", Ready: true},
		{ID: "cd-c", BaseURL: "http://10.1.0.3:7003", Ready: false},
	}
	for i, p := range got {
		if p.ID != want[i].ID || p.BaseURL != want[i].BaseURL || p.Ready != want[i].Ready || p.LastUpdated.IsZero() {
			t.Errorf("peer %d = %+v, want %+v", i, p, want[i])
		}
	}

	// cd-c turns ready; cd-b leaves.
	es, err := eps.Get(ctx, "cd-ro-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es.Endpoints[0].Conditions.Ready = ptr(true)
	if _, err := eps.Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := eps.Delete(ctx, "cd-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCreate(slice("spin-clouddriver", "cd-2", 7002, "http", map[string]string{"cd-a": "10.1.0.1"}, true))
	waitPeers(t, d, func(p []controlplane.Peer) bool {
		return len(p) == 2 && p[0].ID == "cd-a" && p[1].ID == "cd-c" && p[1].Ready
	}, "cd-b gone, cd-c ready")
}

// Without list and watch permission, Run fails with a message naming the
// missing permission, as kubectl auth can-i would report it.
func TestKubernetesDiscoveryForbidden(t *testing.T) {
	c := testenv.StartForTest(t, testenv.Options{Name: "peers-forbidden"})
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	cs := kubernetes.NewForConfigOrDie(cfg)
	d := peers.NewKubernetes(peers.KubernetesConfig{Client: cs, Namespace: "default", Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := d.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "not allowed to list endpointslices") {
		t.Fatalf("Run = %v, want a permission error", err)
	}
}
