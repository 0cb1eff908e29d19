package manifests

import (
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Condition is one of a manifest's status conditions, as Clouddriver
// reports it. Message is empty when Clouddriver's would be null.
type Condition struct {
	State   bool   `json:"state"`
	Message string `json:"message"`
}

// Status is Clouddriver's status of a manifest (Manifest.Status). Orca's
// WaitForManifestStable reads Failed first, then Stable.
type Status struct {
	Stable    Condition `json:"stable"`
	Paused    Condition `json:"paused"`
	Available Condition `json:"available"`
	Failed    Condition `json:"failed"`
}

// Clouddriver's messages, which users and Orca's logs know.
const (
	msgOldGeneration = "Waiting for status generation to match updated object generation"
	msgNoStatus      = "No status reported yet"
	msgNoAvailable   = "No availability reported"
)

// defaultStatus is stable and available, neither paused nor failed: the
// status of every kind without rules of its own.
func defaultStatus() Status {
	return Status{Stable: Condition{State: true}, Available: Condition{State: true}}
}

func noneReported() Status {
	s := defaultStatus()
	s.Stable = Condition{Message: msgNoStatus}
	s.Available = Condition{Message: msgNoAvailable}
	return s
}

func (s *Status) unstable(msg string)    { s.Stable = Condition{Message: msg} }
func (s *Status) unavailable(msg string) { s.Available = Condition{Message: msg} }

// StatusOf computes Clouddriver's status of a cached object (its JSON),
// of API group group and kind kind, with the rules of Clouddriver's handler
// for the kind. Kinds without rules (Services, ConfigMaps, custom
// resources...) are stable. An object that does not decode as its kind is
// reported unstable with the reason.
func StatusOf(group, kind string, obj []byte) Status {
	switch group + "/" + kind {
	case "apps/Deployment":
		return decoded(obj, deploymentStatus)
	case "apps/ReplicaSet":
		return decoded(obj, replicaSetStatus)
	case "apps/StatefulSet":
		return decoded(obj, func(ss *appsv1.StatefulSet, hasStatus bool) Status {
			return statefulSetStatus(ss, hasStatus, updatedReported(obj))
		})
	case "apps/DaemonSet":
		return decoded(obj, daemonSetStatus)
	case "/Pod":
		return decoded(obj, podStatus)
	case "batch/Job":
		return decoded(obj, jobManifestStatus)
	case "autoscaling/HorizontalPodAutoscaler":
		return decoded(obj, hpaStatus)
	case "batch/CronJob":
		var o struct {
			Status *json.RawMessage `json:"status"`
		}
		if err := json.Unmarshal(obj, &o); err != nil {
			return undecodable(kind, err)
		}
		if o.Status == nil {
			return noneReported()
		}
	}
	return defaultStatus()
}

// decoded decodes obj as T and applies rule; an object without a status
// has none reported, except for the kinds whose rule says otherwise first
// (a StatefulSet updated OnDelete).
func decoded[T any](obj []byte, rule func(o *T, hasStatus bool) Status) Status {
	var o T
	if err := json.Unmarshal(obj, &o); err != nil {
		return undecodable(fmt.Sprintf("%T", o), err)
	}
	var st struct {
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(obj, &st); err != nil {
		return undecodable(fmt.Sprintf("%T", o), err)
	}
	has := len(st.Status) > 0 && string(st.Status) != "null"
	return rule(&o, has)
}

func undecodable(what string, err error) Status {
	s := defaultStatus()
	s.unstable(fmt.Sprintf("cannot read the cached object as %s: %v", strings.TrimPrefix(what, "v1."), err))
	return s
}

func replicas(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// deploymentStatus is Clouddriver's KubernetesDeploymentHandler.status.
func deploymentStatus(d *appsv1.Deployment, hasStatus bool) Status {
	if !hasStatus {
		return noneReported()
	}
	s := defaultStatus()
	if d.Status.ObservedGeneration != d.Generation {
		s.unstable(msgOldGeneration)
		return s
	}
	for _, c := range d.Status.Conditions {
		if strings.EqualFold(c.Reason, "DeploymentPaused") {
			s.Paused = Condition{State: true, Message: c.Message}
		}
		if strings.EqualFold(string(c.Type), "Available") && strings.EqualFold(string(c.Status), "false") {
			s.unstable(c.Message)
			s.unavailable(c.Message)
		}
		if strings.EqualFold(string(c.Type), "Progressing") && strings.EqualFold(c.Reason, "ProgressDeadlineExceeded") {
			s.Failed = Condition{State: true, Message: "Deployment exceeded its progress deadline"}
		}
	}
	desired, st := replicas(d.Spec.Replicas), d.Status
	switch {
	case st.UpdatedReplicas < desired:
		s.unstable("Waiting for all replicas to be updated")
	case st.Replicas > st.UpdatedReplicas:
		s.unstable("Waiting for old replicas to finish termination")
	case st.AvailableReplicas < desired:
		s.unstable("Waiting for all replicas to be available")
	case st.ReadyReplicas < desired:
		s.unstable("Waiting for all replicas to be ready")
	}
	return s
}

// replicaSetStatus is Clouddriver's KubernetesReplicaSetHandler.status.
func replicaSetStatus(rs *appsv1.ReplicaSet, hasStatus bool) Status {
	if !hasStatus {
		return noneReported()
	}
	s := defaultStatus()
	desired, st := replicas(rs.Spec.Replicas), rs.Status
	for _, c := range []struct {
		have int32
		msg  string
	}{
		{st.FullyLabeledReplicas, "Waiting for all replicas to be fully-labeled"},
		{st.ReadyReplicas, "Waiting for all replicas to be ready"},
		{st.AvailableReplicas, "Waiting for all replicas to be available"},
	} {
		if desired > c.have {
			s.unstable(c.msg)
			s.unavailable(c.msg)
			return s
		}
	}
	if st.ObservedGeneration != rs.Generation {
		s.unstable("Waiting for replicaset spec update to be observed")
	}
	return s
}

// updatedReported tells whether a StatefulSet's status has updatedReplicas
// (the API server leaves a 0 out).
func updatedReported(obj []byte) bool {
	var o struct {
		Status struct {
			UpdatedReplicas *int32 `json:"updatedReplicas"`
		} `json:"status"`
	}
	return json.Unmarshal(obj, &o) == nil && o.Status.UpdatedReplicas != nil
}

// statefulSetStatus is Clouddriver's KubernetesStatefulSetHandler.status.
// Its partition rule compares the updated replicas with the replicas
// there are (status.replicas), and applies only once the controller
// reported updatedReplicas.
func statefulSetStatus(ss *appsv1.StatefulSet, hasStatus, updated bool) Status {
	s := defaultStatus()
	strategy := ss.Spec.UpdateStrategy
	if strings.EqualFold(string(strategy.Type), "OnDelete") {
		return s
	}
	if !hasStatus {
		return noneReported()
	}
	st := ss.Status
	if st.ObservedGeneration != ss.Generation {
		s.unstable(msgOldGeneration)
		return s
	}
	desired := replicas(ss.Spec.Replicas)
	switch {
	case desired > st.Replicas:
		s.unstable("Waiting for at least the desired replica count to be met")
		return s
	case desired > st.ReadyReplicas:
		s.unstable("Waiting for all updated replicas to be ready")
		return s
	}
	if strings.EqualFold(string(strategy.Type), "RollingUpdate") && updated && strategy.RollingUpdate != nil {
		if p := strategy.RollingUpdate.Partition; p != nil && st.UpdatedReplicas < st.Replicas-*p {
			s.unstable("Waiting for partitioned roll out to finish")
			return s
		}
		s.Stable = Condition{State: true, Message: "Partitioned roll out complete"}
		return s
	}
	switch {
	case desired > st.CurrentReplicas:
		s.unstable("Waiting for all updated replicas to be scheduled")
	case st.CurrentRevision != st.UpdateRevision:
		s.unstable("Waiting for the updated revision to match the current revision")
	}
	return s
}

// daemonSetStatus is Clouddriver's KubernetesDaemonSetHandler.status.
func daemonSetStatus(ds *appsv1.DaemonSet, hasStatus bool) Status {
	if !hasStatus {
		return noneReported()
	}
	s := defaultStatus()
	st := ds.Status
	if st.ObservedGeneration != ds.Generation {
		s.unstable(msgOldGeneration)
		return s
	}
	if !strings.EqualFold(string(ds.Spec.UpdateStrategy.Type), "RollingUpdate") && ds.Spec.UpdateStrategy.Type != "" {
		return s
	}
	desired := st.DesiredNumberScheduled
	switch {
	case desired > st.CurrentNumberScheduled:
		s.unstable("Waiting for all replicas to be scheduled")
	case desired > st.UpdatedNumberScheduled:
		s.unstable("Waiting for all updated replicas to be scheduled")
	case desired > st.NumberAvailable:
		s.unstable("Waiting for all replicas to be available")
	case desired > st.NumberReady:
		s.unstable("Waiting for all replicas to be ready")
	}
	return s
}

// podStatus is Clouddriver's KubernetesPodHandler.status: a Pod that is
// not Running or Succeeded is unstable and unavailable (never failed).
func podStatus(p *corev1.Pod, hasStatus bool) Status {
	if !hasStatus {
		return noneReported()
	}
	s := defaultStatus()
	var msg string
	switch strings.ToLower(string(p.Status.Phase)) {
	case "running", "succeeded":
		return s
	case "pending":
		msg = "Pod is pending"
	case "failed":
		msg = "Pod has failed"
	default:
		msg = "Pod phase is unknown"
	}
	s.unstable(msg)
	s.unavailable(msg)
	return s
}

// jobManifestStatus is Clouddriver's KubernetesJobHandler.status: a Job
// failed by its controller is failed (and stays "stable": Orca reads failed
// first); one still running is unstable.
func jobManifestStatus(j *batchv1.Job, hasStatus bool) Status {
	if !hasStatus {
		return noneReported()
	}
	s := defaultStatus()
	switch state, failed := jobState(j); state {
	case jobFailed:
		s.Failed = Condition{State: true, Message: failed.Message}
	case jobRunning:
		s.unstable("Waiting for jobs to finish")
	}
	return s
}

// hpaStatus is Clouddriver's KubernetesHorizontalPodAutoscalerHandler.status.
func hpaStatus(h *autoscalingv1.HorizontalPodAutoscaler, hasStatus bool) Status {
	if !hasStatus {
		return noneReported()
	}
	s := defaultStatus()
	st := h.Status
	switch {
	case st.DesiredReplicas > st.CurrentReplicas:
		s.unstable(fmt.Sprintf("Waiting for HPA to complete a scale up, current: %d desired: %d", st.CurrentReplicas, st.DesiredReplicas))
	case st.DesiredReplicas < st.CurrentReplicas:
		s.unstable(fmt.Sprintf("Waiting for HPA to complete a scale down, current: %d desired: %d", st.CurrentReplicas, st.DesiredReplicas))
	}
	return s
}
