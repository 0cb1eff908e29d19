package ops

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Annotations and labels of Spinnaker's conventions.
const (
	AnnotationMonikerApplication = "moniker.spinnaker.io/application"
	AnnotationMonikerCluster     = "moniker.spinnaker.io/cluster"
	AnnotationMonikerStack       = "moniker.spinnaker.io/stack"
	AnnotationMonikerDetail      = "moniker.spinnaker.io/detail"
	AnnotationMonikerSequence    = "moniker.spinnaker.io/sequence"

	AnnotationArtifactName     = "artifact.spinnaker.io/name"
	AnnotationArtifactType     = "artifact.spinnaker.io/type"
	AnnotationArtifactLocation = "artifact.spinnaker.io/location"
	AnnotationArtifactVersion  = "artifact.spinnaker.io/version"

	AnnotationLoadBalancers = "traffic.spinnaker.io/load-balancers"

	AnnotationVersioned         = "strategy.spinnaker.io/versioned"
	AnnotationRecreate          = "strategy.spinnaker.io/recreate"
	AnnotationReplace           = "strategy.spinnaker.io/replace"
	AnnotationServerSideApply   = "strategy.spinnaker.io/server-side-apply"
	AnnotationMaxVersionHistory = "strategy.spinnaker.io/max-version-history"
	AnnotationUseSourceCapacity = "strategy.spinnaker.io/use-source-capacity"
	// AnnotationArmoryServerSideApply is the Armory Scale Agent's spelling of
	// the server-side-apply opt-in; it is honoured like AnnotationServerSideApply.
	AnnotationArmoryServerSideApply = "agent-k8s.armory.io/serverside-apply"

	AnnotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	// AnnotationContentDigest records, on a versioned object (but a
	// Secret), the digest of what it was deployed with besides its
	// metadata, so that a deploy of the same content reuses its version.
	AnnotationContentDigest = "kubesvc.io/content-digest"
	AnnotationRestartedAt   = "kubectl.kubernetes.io/restartedAt"
	AnnotationRevision      = "deployment.kubernetes.io/revision"

	LabelManagedBy       = "app.kubernetes.io/managed-by"
	LabelName            = "app.kubernetes.io/name"
	LabelMonikerSequence = "moniker.spinnaker.io/sequence"

	managedBySpinnaker = "spinnaker"
)

// spinnakerNames are Clouddriver's registered names of built-in kinds
// (KubernetesKind), keyed by group and kind.
var spinnakerNames = map[schema.GroupKind]string{
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:            "apiService",
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        "clusterRole",
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: "clusterRoleBinding",
	{Kind: "ConfigMap"}:                                                             "configMap",
	{Group: "apps", Kind: "ControllerRevision"}:                                     "controllerRevision",
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:               "customResourceDefinition",
	{Group: "batch", Kind: "CronJob"}:                                               "cronJob",
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                    "csiDriver",
	{Group: "storage.k8s.io", Kind: "CSINode"}:                                      "csiNode",
	{Group: "apps", Kind: "DaemonSet"}:                                              "daemonSet",
	{Group: "apps", Kind: "Deployment"}:                                             "deployment",
	{Kind: "Event"}:                                                                 "event",
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:                         "horizontalpodautoscaler",
	{Group: "networking.k8s.io", Kind: "Ingress"}:                                   "ingress",
	{Group: "batch", Kind: "Job"}:                                                   "job",
	{Kind: "LimitRange"}:                                                            "limitRange",
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:   "mutatingWebhookConfiguration",
	{Kind: "Namespace"}:                                                             "namespace",
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:                             "networkPolicy",
	{Kind: "PersistentVolume"}:                                                      "persistentVolume",
	{Kind: "PersistentVolumeClaim"}:                                                 "persistentVolumeClaim",
	{Kind: "Pod"}:                                                                   "pod",
	{Group: "policy", Kind: "PodDisruptionBudget"}:                                  "podDisruptionBudget",
	{Group: "apps", Kind: "ReplicaSet"}:                                             "replicaSet",
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:                              "role",
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:                       "roleBinding",
	{Kind: "Secret"}:                                                                "secret",
	{Kind: "Service"}:                                                               "service",
	{Kind: "ServiceAccount"}:                                                        "serviceAccount",
	{Group: "apps", Kind: "StatefulSet"}:                                            "statefulSet",
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                 "storageClass",
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}: "validatingWebhookConfiguration",
	{Group: "networking.istio.io", Kind: "VirtualService"}:                          "virtualService",
	{Group: "networking.istio.io", Kind: "DestinationRule"}:                         "destinationRule",
	{Group: "networking.istio.io", Kind: "Gateway"}:                                 "gateway",
}

// NativeGroup reports whether Clouddriver leaves the group out of a kind's
// name: the core group and the built-in Kubernetes groups.
func NativeGroup(g string) bool {
	return g == "" || !strings.Contains(g, ".") || strings.HasSuffix(g, ".k8s.io")
}

// KindName is a kind as Clouddriver spells it in "kind name" strings and
// artifact types: the registered lowerCamel name of a built-in kind
// ("configMap", "deployment"), the kind itself otherwise, followed by
// ".group" for kinds of non-Kubernetes API groups ("Rollout.argoproj.io").
func KindName(gk schema.GroupKind) string {
	name, ok := spinnakerNames[gk]
	if !ok {
		name = gk.Kind
	}
	if NativeGroup(gk.Group) {
		return name
	}
	return name + "." + gk.Group
}

// fullName is Clouddriver's "kind name".
func fullName(gk schema.GroupKind, name string) string { return KindName(gk) + " " + name }

// Deploy priorities, Clouddriver's DeployPriority: lower values are applied
// first, so that namespaces, CRDs and mounted data exist before workloads.
func deployPriority(gk schema.GroupKind) int {
	switch gk.Group + "/" + gk.Kind {
	case "/Namespace":
		return 0
	case "rbac.authorization.k8s.io/Role", "rbac.authorization.k8s.io/ClusterRole":
		return 20
	case "rbac.authorization.k8s.io/RoleBinding", "rbac.authorization.k8s.io/ClusterRoleBinding",
		"apiextensions.k8s.io/CustomResourceDefinition":
		return 30
	case "/ServiceAccount", "storage.k8s.io/StorageClass", "/PersistentVolume",
		"admissionregistration.k8s.io/MutatingWebhookConfiguration",
		"admissionregistration.k8s.io/ValidatingWebhookConfiguration":
		return 40
	case "/ConfigMap", "/Secret", "/PersistentVolumeClaim":
		return 50
	case "/Service", "networking.k8s.io/Ingress", "networking.k8s.io/NetworkPolicy":
		return 70
	case "apiregistration.k8s.io/APIService":
		return 80
	case "policy/PodDisruptionBudget":
		return 90
	case "apps/Deployment", "apps/ReplicaSet", "apps/StatefulSet", "apps/DaemonSet",
		"batch/Job", "batch/CronJob", "/Pod":
		return 100
	case "autoscaling/HorizontalPodAutoscaler":
		return 110
	}
	return 1000
}

// versionedByDefault lists the kinds Clouddriver versions (NAME-vNNN)
// unless told otherwise.
func versionedByDefault(gk schema.GroupKind) bool {
	switch gk {
	case schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, schema.GroupKind{Kind: "Pod"},
		schema.GroupKind{Kind: "ConfigMap"}, schema.GroupKind{Kind: "Secret"}:
		return true
	}
	return false
}

// receivesTraffic lists the kinds whose deploy attaches the Services named
// by traffic.spinnaker.io/load-balancers (Clouddriver's CanReceiveTraffic).
func receivesTraffic(gk schema.GroupKind) bool {
	return gk == schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}
}

// strategy is a manifest's strategy.spinnaker.io/* annotations.
type strategy struct {
	versioned         *bool // nil: the kind's default
	recreate, replace bool
	maxVersionHistory *int
	useSourceCapacity bool
}

func strategyOf(ann map[string]string) strategy {
	var s strategy
	if v, ok := ann[AnnotationVersioned]; ok {
		b := strings.EqualFold(v, "true")
		s.versioned = &b
	}
	s.recreate = strings.EqualFold(ann[AnnotationRecreate], "true")
	s.replace = !s.recreate && strings.EqualFold(ann[AnnotationReplace], "true")
	s.useSourceCapacity = strings.EqualFold(ann[AnnotationUseSourceCapacity], "true")
	if n, err := atoiStrict(ann[AnnotationMaxVersionHistory]); err == nil {
		s.maxVersionHistory = &n
	}
	return s
}
