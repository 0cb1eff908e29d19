package manifests

import (
	"testing"
)

// cond is a condition for the table: state and message.
func cond(state bool, msg string) Condition { return Condition{State: state, Message: msg} }

func TestStatusRules(t *testing.T) {
	stable, available := cond(true, ""), cond(true, "")
	notPaused, notFailed := cond(false, ""), cond(false, "")
	none := Status{Stable: cond(false, msgNoStatus), Available: cond(false, msgNoAvailable), Paused: notPaused, Failed: notFailed}
	unstable := func(msg string) Status {
		return Status{Stable: cond(false, msg), Available: available, Paused: notPaused, Failed: notFailed}
	}
	down := func(msg string) Status {
		return Status{Stable: cond(false, msg), Available: cond(false, msg), Paused: notPaused, Failed: notFailed}
	}
	ok := Status{Stable: stable, Available: available, Paused: notPaused, Failed: notFailed}
	for _, c := range []struct {
		name, group, kind, obj string
		want                   Status
	}{
		{"deployment without status", "apps", "Deployment", `{"metadata": {"generation": 1}, "spec": {"replicas": 1}}`, none},
		{"deployment not observed", "apps", "Deployment", `{"metadata": {"generation": 2}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1}}`,
			unstable(msgOldGeneration)},
		{"deployment rolled out", "apps", "Deployment", `{"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}}`, ok},
		{"deployment of 0 replicas", "apps", "Deployment", `{"metadata": {"generation": 1}, "spec": {"replicas": 0}, "status": {"observedGeneration": 1}}`, ok},
		{"deployment updating", "apps", "Deployment", `{"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1}}`,
			unstable("Waiting for all replicas to be updated")},
		{"deployment old replicas", "apps", "Deployment", `{"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2}}`,
			unstable("Waiting for old replicas to finish termination")},
		{"deployment unavailable", "apps", "Deployment", `{"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1, "readyReplicas": 2,
			"conditions": [{"type": "Available", "status": "False", "message": "Deployment does not have minimum availability."}]}}`,
			Status{Stable: cond(false, "Waiting for all replicas to be available"), Available: cond(false, "Deployment does not have minimum availability."), Paused: notPaused, Failed: notFailed}},
		{"deployment unavailable, replicas met", "apps", "Deployment", `{"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1,
			"conditions": [{"type": "Available", "status": "False", "message": "MinimumReplicasUnavailable"}]}}`,
			down("MinimumReplicasUnavailable")},
		{"deployment not ready", "apps", "Deployment", `{"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 1}}`,
			unstable("Waiting for all replicas to be ready")},
		{"deployment past its deadline, paused", "apps", "Deployment", `{"metadata": {"generation": 3}, "spec": {"replicas": 1}, "status": {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 0,
			"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"a-1\" has timed out progressing."},
			{"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused", "message": "Deployment is paused"}]}}`,
			Status{Stable: cond(false, "Waiting for all replicas to be updated"), Available: available, Paused: cond(true, "Deployment is paused"), Failed: cond(true, "Deployment exceeded its progress deadline")}},

		{"replicaset not ready", "apps", "ReplicaSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}}`,
			down("Waiting for all replicas to be ready")},
		{"replicaset not labeled", "apps", "ReplicaSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"replicas": 0}}`,
			down("Waiting for all replicas to be fully-labeled")},
		{"replicaset not observed", "apps", "ReplicaSet", `{"metadata": {"generation": 2}, "spec": {"replicas": 0}, "status": {"observedGeneration": 1, "replicas": 0}}`,
			unstable("Waiting for replicaset spec update to be observed")},
		{"replicaset ready", "apps", "ReplicaSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}}`, ok},

		{"statefulset on delete", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 3, "updateStrategy": {"type": "OnDelete"}}}`, ok},
		{"statefulset without status", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 3}}`, none},
		{"statefulset short", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 3}, "status": {"observedGeneration": 1, "replicas": 2}}`,
			unstable("Waiting for at least the desired replica count to be met")},
		{"statefulset not ready", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 3}, "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 2}}`,
			unstable("Waiting for all updated replicas to be ready")},
		{"statefulset partitioned", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
			"status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1}}`,
			unstable("Waiting for partitioned roll out to finish")},
		{"statefulset partition done", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
			"status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2}}`,
			Status{Stable: cond(true, "Partitioned roll out complete"), Available: available, Paused: notPaused, Failed: notFailed}},
		{"statefulset scaling down", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 2, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
			"status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2}}`,
			unstable("Waiting for partitioned roll out to finish")},
		{"statefulset without updatedReplicas", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 1, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
			"status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "currentReplicas": 0}}`,
			unstable("Waiting for all updated replicas to be scheduled")},
		{"statefulset revisions differ", "apps", "StatefulSet", `{"metadata": {"generation": 1}, "spec": {"replicas": 1, "updateStrategy": {"type": "RollingUpdate"}},
			"status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "currentRevision": "a", "updateRevision": "b"}}`,
			unstable("Waiting for the updated revision to match the current revision")},

		{"daemonset unscheduled", "apps", "DaemonSet", `{"metadata": {"generation": 1}, "spec": {"updateStrategy": {"type": "RollingUpdate"}},
			"status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 1}}`,
			unstable("Waiting for all replicas to be scheduled")},
		{"daemonset not ready", "apps", "DaemonSet", `{"metadata": {"generation": 1}, "spec": {}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 2,
			"currentNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2, "numberReady": 1}}`,
			unstable("Waiting for all replicas to be ready")},
		{"daemonset on delete", "apps", "DaemonSet", `{"metadata": {"generation": 1}, "spec": {"updateStrategy": {"type": "OnDelete"}}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 2}}`, ok},

		{"pod pending", "", "Pod", `{"status": {"phase": "Pending"}}`, down("Pod is pending")},
		{"pod failed", "", "Pod", `{"status": {"phase": "Failed"}}`, down("Pod has failed")},
		{"pod running", "", "Pod", `{"status": {"phase": "Running"}}`, ok},
		{"pod odd phase", "", "Pod", `{"status": {}}`, down("Pod phase is unknown")},

		{"job running", "batch", "Job", `{"spec": {"completions": 2}, "status": {"succeeded": 1}}`, unstable("Waiting for jobs to finish")},
		{"job failed", "batch", "Job", `{"spec": {}, "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "message": "Job has reached the specified backoff limit"}]}}`,
			Status{Stable: stable, Available: available, Paused: notPaused, Failed: cond(true, "Job has reached the specified backoff limit")}},
		{"job done", "batch", "Job", `{"spec": {}, "status": {"succeeded": 1}}`, ok},
		{"job without status", "batch", "Job", `{"spec": {}}`, none},

		{"hpa scaling up", "autoscaling", "HorizontalPodAutoscaler", `{"status": {"currentReplicas": 1, "desiredReplicas": 3}}`,
			unstable("Waiting for HPA to complete a scale up, current: 1 desired: 3")},
		{"hpa scaling down", "autoscaling", "HorizontalPodAutoscaler", `{"status": {"currentReplicas": 3, "desiredReplicas": 1}}`,
			unstable("Waiting for HPA to complete a scale down, current: 3 desired: 1")},
		{"cronjob without status", "batch", "CronJob", `{"spec": {}}`, none},
		{"cronjob", "batch", "CronJob", `{"spec": {}, "status": {}}`, ok},
		{"service", "", "Service", `{"spec": {}}`, ok},
		{"custom resource", "argoproj.io", "Rollout", `{"spec": {}, "status": {"phase": "Degraded"}}`, ok},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := StatusOf(c.group, c.kind, []byte(c.obj)); got != c.want {
				t.Errorf("StatusOf = %+v\nwant       %+v", got, c.want)
			}
		})
	}
}

func TestStatusOfUndecodableObject(t *testing.T) {
	got := StatusOf("apps", "Deployment", []byte(`{"spec": {"replicas": "two"}}`))
	if got.Stable.State || got.Stable.Message == "" {
		t.Errorf("StatusOf = %+v, want unstable with the reason", got)
	}
	t.Log(got.Stable.Message)
}
