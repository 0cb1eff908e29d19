// Package ops executes Spinnaker Clouddriver Kubernetes operations on a
// cluster, with the agent's own credentials (flow "3. Operate" of
// docs/architecture.md).
//
// An Executor is built from a *rest.Config and Options (field manager,
// server-side-apply policy, retries). Execute takes an operation type and
// the JSON description of one operation, the value of
// {"deployManifest": {...}} in Clouddriver's POST /kubernetes/ops, and
// returns a Result in the shape of Clouddriver's OperationResult
// (manifestNamesByNamespace, manifests, createdArtifacts, boundArtifacts).
//
// Operations: deployManifest, deleteManifest, scaleManifest, patchManifest,
// undoRolloutManifest, pauseRolloutManifest, resumeRolloutManifest,
// rollingRestartManifest, runJob, enableManifest, disableManifest.
//
// # Validation
//
// Every description is checked before anything is written: JSON shape and
// field types, required fields, manifest structure (apiVersion, kind,
// metadata.name or generateName, namespace, string labels and annotations),
// then every kind against the cluster's discovery (refreshed once when a
// kind is unknown, so new CRDs are found). Problems are *ValidationError
// naming the field ("manifests[1].kind: unknown kind ..."), for a 400
// answer. Validate does the static part without a cluster;
// (*Executor).Validate adds discovery. Reads made while preparing (existing
// versions, load balancer Services) happen before the first write too.
//
// # Deploy
//
// deployManifest follows Clouddriver's KubernetesDeployManifestOperation:
//
//   - Manifests (kind: List is expanded) are sorted by deploy priority:
//     namespaces, RBAC and CRDs, then ConfigMaps and Secrets, Services, then
//     workloads, HPAs last. namespaceOverride, else metadata.namespace, else
//     Options.DefaultNamespace is the namespace of namespaced kinds.
//   - Artifacts are bound: requiredArtifacts, optionalArtifacts and the
//     artifacts created by earlier manifests of the same request replace
//     image names and ConfigMap / Secret references (see bindArtifacts), so a
//     Deployment mounting ConfigMap "cfg" deployed with it gets "cfg-v003".
//     An unbound required artifact fails the operation.
//   - Versioning: ReplicaSets, Pods, ConfigMaps and Secrets, or any object
//     annotated strategy.spinnaker.io/versioned: "true" (the annotation
//     wins, then the description's versioned flag, then the kind), are named
//     NAME-vNNN, the version after the highest found in the namespace among
//     objects of the kind named NAME-vNNN or annotated
//     artifact.spinnaker.io/name: NAME; or, as Clouddriver's
//     ResourceVersioner does, the newest existing version deployed with the
//     same content (all but metadata, artifacts bound): its
//     kubesvc.io/content-digest annotation, or its last-applied
//     configuration. Secrets carry no digest (it would hash their values):
//     their versions are read and compared in the agent (sameSecret);
//     ReplicaSets are never reused (see prepare), nor versions being
//     deleted; a reused version is applied, never recreated or replaced,
//     and cleanupArtifacts keeps it whatever its number.
//   - Annotations moniker.spinnaker.io/{application,cluster,stack,detail,
//     sequence} and artifact.spinnaker.io/{type,name,location,version} on the
//     object and its pod template (values already present are kept); labels
//     app.kubernetes.io/name (kept if present) and
//     app.kubernetes.io/managed-by: spinnaker and, when versioned,
//     moniker.spinnaker.io/sequence on the object and its pod template
//     (unless skipSpecTemplateLabels). The moniker cluster defaults to
//     "kind name"; moniker.app falls back to the description's application.
//   - Traffic (ReplicaSets, as Clouddriver): services are recorded in
//     traffic.spinnaker.io/load-balancers, and with enableTraffic (default
//     true) each Service's selector is added to the pod template labels.
//   - Strategies per object: strategy.spinnaker.io/recreate (delete, wait
//     until gone, apply), strategy.spinnaker.io/replace (create or PUT),
//     else apply; strategy.spinnaker.io/use-source-capacity keeps the live
//     replicas (of the previous version when versioned). Objects with only
//     generateName are created.
//   - Apply is server-side (field manager Options.FieldManager, force) or
//     client-side (kubectl's: create with
//     kubectl.kubernetes.io/last-applied-configuration, else a three-way
//     patch of last-applied, manifest and live object, strategic merge for
//     built-in kinds and JSON merge for others), per Options.ServerSideApply:
//     always, never, preferred (the default: server-side unless the
//     object's strategy.spinnaker.io/server-side-apply or
//     agent-k8s.armory.io/serverside-apply annotation is "false" or
//     "disabled") or allowed (client-side unless it is "true",
//     "force-conflicts" or "enabled"); under preferred and allowed a
//     kind's own policy (Options.SSAKinds) decides first.
//
// runJob deploys one Job the same way with moniker app = application: a
// Job with a name gets strategy.spinnaker.io/recreate (each run is a new
// Job; no suffix is added, as in Clouddriver 1.22+), one with only
// generateName is created. Its result also has deployedNamesByLocation.
//
// # Other operations
//
//   - deleteManifest: the object named by manifestName ("kind name") in
//     location, or every object of kinds matching labelSelectors
//     (Clouddriver's {"selectors": [{kind, key, values}]} or a selector
//     string). options: orphanDependents, else cascading (false orphans),
//     else propagationPolicy; default background; gracePeriodSeconds. Objects
//     already gone are skipped; deletion is not awaited.
//   - scaleManifest: replicas through the scale subresource.
//   - patchManifest: patchBody with options.mergeStrategy strategic
//     (default, built-in kinds only), merge or json; artifacts are bound into
//     strategic and merge patches.
//   - undoRolloutManifest: kubectl rollout undo for Deployments (template
//     and annotations of the revision's ReplicaSet, JSON patch), StatefulSets
//     and DaemonSets (ControllerRevision patch); revision, or
//     numRevisionsBack from the newest, or the previous revision.
//   - pauseRolloutManifest / resumeRolloutManifest: spec.paused of a
//     Deployment. rollingRestartManifest: the
//     kubectl.kubernetes.io/restartedAt pod template annotation of a
//     Deployment, StatefulSet or DaemonSet.
//   - enableManifest / disableManifest: as Clouddriver, Services keep their
//     selectors; each load balancer Service's selector labels (from
//     loadBalancers, else the workload's traffic.spinnaker.io/load-balancers
//     annotation) are added to or removed from the workload's pod template
//     labels by JSON patch, then from the labels of every Pod the workload
//     controls, so its pods join or leave the Services' endpoints.
//
// # Errors and retries
//
// API requests are retried per Options.Retries (kubernetes.retries.*):
// conflicts, 429 and 5xx always, other errors when their message contains
// one of RetryableErrors ("timeout", "deadline exceeded") or RetryAnyError
// is set; never validation errors or a cancelled context. A create from
// generateName is never retried. Errors wrap the API error with %w.
//
// Result manifests go through package scrub: no managedFields, Secret
// values blanked.
package ops
