package manifests

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/store"
)

// jobStatus is Clouddriver's KubernetesJobStatus, what Orca's
// WaitOnJobCompletion polls until jobState is Succeeded or Failed.
type jobStatus struct {
	Name              string            `json:"name"`
	Account           string            `json:"account"`
	Location          string            `json:"location"`
	Provider          string            `json:"provider"`
	CreatedTime       int64             `json:"createdTime"`
	JobState          string            `json:"jobState"`
	CompletionDetails completionDetails `json:"completionDetails"`
	Message           string            `json:"message,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	FailureDetails    string            `json:"failureDetails,omitempty"`
	Pods              []jobPod          `json:"pods"`
	MostRecentPodName string            `json:"mostRecentPodName,omitempty"`
}

type completionDetails struct {
	ExitCode string `json:"exitCode"`
	Signal   string `json:"signal"`
	Message  string `json:"message"`
	Reason   string `json:"reason"`
}

// jobPod is one of the job's Pods: its name and its status as cached.
type jobPod struct {
	Name   string          `json:"name"`
	Status json.RawMessage `json:"status"`
}

// maxJobPodPrefix is how much of a Job's name its Pods' names surely keep:
// the 58 characters of a generated name, less "-" and an index of up to 5
// digits and its "-".
const maxJobPodPrefix = 58 - len("-99999-")

// Job states, as Clouddriver's JobState spells them.
const (
	jobRunning   = "Running"
	jobSucceeded = "Succeeded"
	jobFailed    = "Failed"
)

// jobState is Clouddriver's KubernetesJobStatus.getJobState: succeeded once
// spec.completions (default 1) Pods succeeded, or the controller says it
// completed; failed when the controller set a Failed condition; running
// otherwise. The Failed condition's
// message and reason come with it.
func jobState(j *batchv1.Job) (state string, failed *batchv1.JobCondition) {
	completions := int32(1)
	if j.Spec.Completions != nil {
		completions = *j.Spec.Completions
	}
	if j.Status.Succeeded >= completions {
		return jobSucceeded, nil
	}
	// A success policy (Indexed Jobs) completes a Job before all its
	// completions: the controller says so in its conditions, which
	// Clouddriver does not read.
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobSuccessCriteriaMet) && c.Status == corev1.ConditionTrue {
			return jobSucceeded, nil
		}
	}
	for i, c := range j.Status.Conditions {
		if strings.EqualFold(string(c.Type), "Failed") && strings.EqualFold(string(c.Status), "True") {
			return jobFailed, &j.Status.Conditions[i]
		}
	}
	return jobRunning, nil
}

// jobName reads a job id: Clouddriver's "job NAME", or a bare name.
func jobName(id string) (string, error) {
	if !strings.Contains(id, " ") {
		id = "job " + id
	}
	kind, name, err := fullName(id)
	if err != nil {
		return "", fmt.Errorf("id%s", strings.TrimPrefix(err.Error(), "name"))
	}
	if !strings.EqualFold(kind, "job") {
		return "", fmt.Errorf(`id: %q is not "job NAME" (e.g. "job pi-x7k2q")`, id)
	}
	return name, nil
}

// getJob answers the status of a Job, with its Pods, from the cache.
func (h *Handler) getJob(w http.ResponseWriter, r *http.Request) {
	j, ok := h.cachedJob(w, r)
	if !ok {
		return
	}
	account, ns := r.PathValue("account"), j.Namespace
	pods, err := h.jobPods(r, account, j)
	if err != nil {
		h.fail(w, r, "list a Job's cached Pods", err)
		return
	}
	st := jobStatus{
		Name: j.Name, Account: account, Location: ns, Provider: "kubernetes",
		CreatedTime: j.CreationTimestamp.UnixMilli(), Pods: []jobPod{},
	}
	var failed *batchv1.JobCondition
	st.JobState, failed = jobState(j)
	if failed != nil {
		st.Message, st.Reason = failed.Message, failed.Reason
		st.CompletionDetails.Message, st.CompletionDetails.Reason = failed.Message, failed.Reason
		st.FailureDetails = failureDetails(pods)
	}
	for _, p := range pods {
		raw, _ := json.Marshal(p.Status)
		st.Pods = append(st.Pods, jobPod{Name: p.Name, Status: raw})
	}
	if len(pods) > 0 {
		st.MostRecentPodName = pods[len(pods)-1].Name
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

// cachedJob reads the Job a request names ({account}, {location}, {id}),
// or answers why it cannot.
func (h *Handler) cachedJob(w http.ResponseWriter, r *http.Request) (*batchv1.Job, bool) {
	account, ns := r.PathValue("account"), location(r)
	name, err := jobName(r.PathValue("id"))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	if ns == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "location: required (the Job's namespace)")
		return nil, false
	}
	if err := checkLocation(ns); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	o, err := h.cache.GetObject(r.Context(), store.ObjectKey{Account: account, Group: "batch", Kind: "Job", Namespace: ns, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		if streams, err := h.cache.Streams(r.Context(), []string{account}); err == nil && len(streams) == 0 {
			httpapi.WriteError(w, http.StatusNotFound, "%v", &notCachedError{account: account})
			return nil, false
		}
		httpapi.WriteError(w, http.StatusNotFound, "no cached job %q in namespace %q of account %q", name, ns, account)
		return nil, false
	}
	if err != nil {
		h.fail(w, r, "read a cached Job", err)
		return nil, false
	}
	var j batchv1.Job
	if err := json.Unmarshal(o.JSON, &j); err != nil {
		h.fail(w, r, "decode a cached Job", err)
		return nil, false
	}
	j.Namespace = ns
	return &j, true
}

// jobPods are the cached Pods of the Job's selector, by start time (not
// started yet: last). An account that does not cache Pods has none.
func (h *Handler) jobPods(r *http.Request, account string, j *batchv1.Job) ([]corev1.Pod, error) {
	if j.Spec.Selector == nil || len(j.Spec.Selector.MatchLabels) == 0 {
		return nil, nil
	}
	// The job controller names its Pods "JOB-..." ("JOB-INDEX-..." when
	// indexed), a generated name the API server cuts to 58 characters:
	// read only those, by what is left of the Job's name (the selector
	// then picks its Pods).
	prefix := j.Name + "-"
	if len(prefix) > maxJobPodPrefix {
		prefix = j.Name[:maxJobPodPrefix]
	}
	list, err := h.cache.ListObjects(r.Context(), store.Query{Account: account, Kind: "Pod", CoreGroup: true, Namespace: j.Namespace,
		NamePrefix: prefix, Selector: labels.SelectorFromSet(j.Spec.Selector.MatchLabels)})
	if err != nil {
		return nil, err
	}
	pods := make([]corev1.Pod, 0, len(list))
	for _, o := range list {
		var p corev1.Pod
		if json.Unmarshal(o.JSON, &p) == nil {
			pods = append(pods, p)
		}
	}
	started := func(p corev1.Pod) time.Time {
		if p.Status.StartTime == nil {
			return time.Unix(1<<40, 0)
		}
		return p.Status.StartTime.Time
	}
	slices.SortStableFunc(pods, func(a, b corev1.Pod) int {
		return cmp.Or(started(a).Compare(started(b)), cmp.Compare(a.Name, b.Name))
	})
	return pods, nil
}

// failureDetails describes the first container of the Pods (in start
// order; init containers first) that exited with an error, else the first
// one waiting, as Clouddriver's captureFailureDetails does.
func failureDetails(pods []corev1.Pod) string {
	for _, p := range pods {
		statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
		var waiting *corev1.ContainerStatus
		for i, c := range statuses {
			if t := c.State.Terminated; t != nil && t.ExitCode != 0 {
				return fmt.Sprintf("Pod: '%s' had errors.\n Container: '%s' exited with code: %d.\n Status: %s.\n Logs: %s",
					p.Name, c.Name, t.ExitCode, t.Reason, t.Message)
			}
			if c.State.Waiting != nil && waiting == nil {
				waiting = &statuses[i]
			}
		}
		if waiting != nil {
			return fmt.Sprintf("Pod: '%s' had errors.\n Container: '%s' is waiting.\n Status: %s.\n Logs: %s",
				p.Name, waiting.Name, waiting.State.Waiting.Reason, waiting.State.Waiting.Message)
		}
	}
	return ""
}

// deleteJob answers Orca's cancellation of a Run Job stage. Clouddriver
// does not implement it for Kubernetes either (Orca logs the error and
// goes on); a job is deleted with a deleteManifest operation.
func (h *Handler) deleteJob(w http.ResponseWriter, _ *http.Request) {
	httpapi.WriteError(w, http.StatusNotImplemented,
		"cancelling a Kubernetes job is not implemented (nor in Clouddriver): delete it with a deleteManifest operation (POST /kubernetes/ops)")
}
