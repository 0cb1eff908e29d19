package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/peers"
)

// peerDiscovery builds kubesvc.cluster's discovery: nil for local, a
// fixed list for static, an EndpointSlice watch for kubernetes.
func peerDiscovery(cfg *cpconfig.Config, log *slog.Logger) (interface {
	controlplane.Peers
	controlplane.Extension
}, error) {
	switch cfg.Cluster.Mode {
	case cpconfig.ClusterStatic:
		list := make([]controlplane.Peer, 0, len(cfg.Cluster.Static))
		for _, p := range cfg.Cluster.Static {
			list = append(list, controlplane.Peer{ID: p.ID, BaseURL: p.BaseURL})
		}
		return peers.NewStatic(list), nil
	case cpconfig.ClusterKubernetes:
		k := cfg.Cluster.Kubernetes
		restCfg, err := clusterClientConfig(k)
		if err != nil {
			return nil, fmt.Errorf("kubesvc.cluster-kubernetes: %w", err)
		}
		cs, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return nil, fmt.Errorf("kubesvc.cluster-kubernetes: %w", err)
		}
		ns := k.Namespace
		if ns == "" {
			ns = podNamespace()
		}
		if ns == "" {
			return nil, fmt.Errorf("kubesvc.cluster-kubernetes.namespace: not set, and not running in a pod: %w", peers.ErrNoNamespace)
		}
		return peers.NewKubernetes(peers.KubernetesConfig{
			Client: cs, Namespace: ns, ServiceNamePrefix: k.ClouddriverServiceNamePrefix, PortName: k.HTTPPortName,
			Scheme: restScheme(cfg), Log: log.With("component", "peers"),
		}), nil
	}
	return nil, nil
}

func clusterClientConfig(k cpconfig.ClusterKubernetesConfig) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if k.KubeconfigFile != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", k.KubeconfigFile)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	if !k.VerifySSL {
		cfg.Insecure, cfg.CAData, cfg.CAFile = true, nil, ""
	}
	return cfg, nil
}

// defaultBaseURL is where peers reach this replica when kubesvc.baseUrl is
// not set: the pod's IP in Kubernetes, else server.address when it names
// one host, else the host name.
func defaultBaseURL(cfg *cpconfig.Config) string {
	host := os.Getenv("POD_IP")
	if ip := net.ParseIP(cfg.Server.Address); host == "" && cfg.Server.Address != "" && (ip == nil || !ip.IsUnspecified()) {
		host = cfg.Server.Address
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	return restScheme(cfg) + "://" + net.JoinHostPort(host, strconv.Itoa(cfg.Server.Port))
}

// restScheme is the replicas' REST URL scheme: https with server.ssl.
func restScheme(cfg *cpconfig.Config) string {
	if cfg.Server.SSL.Enabled {
		return "https"
	}
	return "http"
}
