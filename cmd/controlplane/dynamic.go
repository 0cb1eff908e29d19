package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
)

// extendDynamic registers the Dynamic Accounts feature (disabled, it
// answers 501). Secret references are read with the pod's service account,
// or with kubesvc.cluster-kubernetes.kubeconfigFile outside Kubernetes.
func extendDynamic(srv *controlplane.Server, st store.Store, cfg *cpconfig.Config, log *slog.Logger) error {
	d := cfg.DynamicAccounts
	// Without a key the sealer refuses inline contents (ErrNoKey says why).
	sealer, err := credentials.NewSealerFromConfig(credentials.KeyConfig{Key: d.EncryptionKey, KeyFile: d.EncryptionKeyFile})
	if err != nil {
		return fmt.Errorf("kubesvc.dynamicAccounts.%w", err)
	}
	ns := cfg.Cluster.Kubernetes.Namespace
	if ns == "" {
		ns = podNamespace()
	}
	r := &credentials.Resolver{Sealer: sealer, Namespace: ns}
	if restCfg, err := clusterClientConfig(cfg.Cluster.Kubernetes); err == nil {
		cs, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return err
		}
		r.Client = cs
	} else if d.Enabled {
		log.Info("no Kubernetes access: secret references (encryptedFile:k8s!...) cannot be resolved", "reason", err)
	}
	mgr := dynaccounts.New(dynaccounts.Config{
		Enabled:        d.Enabled,
		RetryFrequency: d.RetryFrequency,
		MaxRetries:     d.MaxRetries,
		ReplicaID:      cfg.ID,
		Log:            log.With("component", "dynaccounts"),
		Metrics:        srv.Metrics(),
	}, st, srv, dynaccounts.NewCredentials(r))
	srv.Extend(mgr)
	return extendMigration(srv, st, mgr, cfg, log)
}

// podNamespace is the namespace this process runs in: POD_NAMESPACE, else
// the service account's; "" outside a pod.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}
