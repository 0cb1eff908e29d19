package manifests_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func job(name, status string) string {
	return fmt.Sprintf(`{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": %q, "namespace": "prod", "creationTimestamp": "2026-01-01T00:00:00Z"},
  "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-%s"}}}, "status": %s}`, name, name, status)
}

func pod(name, job, started, status string) string {
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": %q, "namespace": "prod", "labels": {"batch.kubernetes.io/controller-uid": "uid-%s"}},
  "status": {"phase": "Failed", "startTime": %q, %s}}`, name, job, started, status)
}

type jobStatus struct {
	Name, Account, Location, Provider, JobState, Message, Reason, FailureDetails, MostRecentPodName string
	CreatedTime                                                                                     int64
	CompletionDetails                                                                               map[string]string
	Pods                                                                                            []struct {
		Name   string
		Status struct{ Phase string }
	}
}

func TestJobStatus(t *testing.T) {
	e := newEnv(t)
	e.put(t, "batch", "v1", "jobs", "Job", true, job("ok", `{"succeeded": 1}`))
	e.put(t, "batch", "v1", "jobs", "Job", true, job("running", `{"active": 1}`))
	e.put(t, "batch", "v1", "jobs", "Job", true, strings.Replace(job("indexed", `{"succeeded": 1, "conditions": [
	  {"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}`), `"spec": {`, `"spec": {"completions": 3, `, 1))
	e.put(t, "batch", "v1", "jobs", "Job", true, job("broken", `{"failed": 2, "conditions": [
	  {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}`))
	e.put(t, "", "v1", "pods", "Pod", true, pod("broken-b", "broken", "2026-01-01T00:00:10Z",
		`"containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 3, "reason": "Error", "message": "boom"}}}]`))
	e.put(t, "", "v1", "pods", "Pod", true, pod("broken-a", "broken", "2026-01-01T00:00:01Z",
		`"initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0}}}], "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]`))
	e.put(t, "", "v1", "pods", "Pod", true, pod("ok-x1", "ok", "2026-01-01T00:00:01Z", `"containerStatuses": []`))

	get := func(path string) jobStatus {
		t.Helper()
		code, body := e.get(t, path)
		var st jobStatus
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return st
	}
	st := get("/applications/shop/jobs/main/prod/job%20broken")
	if st.JobState != "Failed" || st.Reason != "BackoffLimitExceeded" || st.Message != "Job has reached the specified backoff limit" ||
		st.CompletionDetails["reason"] != "BackoffLimitExceeded" || st.CompletionDetails["exitCode"] != "" {
		t.Errorf("failed job: %+v", st)
	}
	if len(st.Pods) != 2 || st.Pods[0].Name != "broken-a" || st.MostRecentPodName != "broken-b" || st.Pods[0].Status.Phase != "Failed" {
		t.Errorf("failed job's pods (by start time): %+v, most recent %q", st.Pods, st.MostRecentPodName)
	}
	if want := "Pod: 'broken-a' had errors.\n Container: 'main' exited with code: 1.\n Status: Error.\n Logs: "; st.FailureDetails != want {
		t.Errorf("failureDetails %q, want %q", st.FailureDetails, want)
	}
	if st.Name != "broken" || st.Account != "main" || st.Location != "prod" || st.Provider != "kubernetes" || st.CreatedTime != 1767225600000 {
		t.Errorf("identity: %+v", st)
	}
	if st := get("/applications/shop/jobs/main/prod/job%20ok"); st.JobState != "Succeeded" || len(st.Pods) != 1 || st.FailureDetails != "" {
		t.Errorf("succeeded job: %+v", st)
	}
	if st := get("/applications/shop/jobs/main/prod/running"); st.JobState != "Running" || len(st.Pods) != 0 || st.MostRecentPodName != "" {
		t.Errorf("running job, by its bare name: %+v", st)
	}
	// A long name: its Pods' generated names keep 58 characters of it.
	long := strings.Repeat("j", 60)
	e.put(t, "batch", "v1", "jobs", "Job", true, job(long, `{"active": 1}`))
	e.put(t, "", "v1", "pods", "Pod", true, pod(long[:58]+"x7k2q", long, "2026-01-01T00:00:01Z", `"containerStatuses": []`))
	if st := get("/applications/shop/jobs/main/prod/job%20" + long); len(st.Pods) != 1 || st.MostRecentPodName != long[:58]+"x7k2q" {
		t.Errorf("a job of a 60-character name: pods %+v, want its Pod", st.Pods)
	}
	if st := get("/applications/shop/jobs/main/prod/job%20indexed"); st.JobState != "Succeeded" {
		t.Errorf("job complete by its success policy (1 of 3 completions): %+v", st)
	}
	e.wantError(t, "/applications/shop/jobs/nobody/prod/job%20gone", http.StatusNotFound, `account "nobody" has nothing cached`)
	e.wantError(t, "/applications/shop/jobs/main//job%20ok", http.StatusBadRequest, "location: required")
	e.wantError(t, "/applications/shop/jobs/main/Prod/job%20ok", http.StatusBadRequest, `location: "Prod" is not a namespace name`)
	e.wantError(t, "/applications/shop/jobs/main/prod/job%20gone", http.StatusNotFound, `no cached job "gone" in namespace "prod" of account "main"`)
	e.wantError(t, "/applications/shop/jobs/main/prod/deployment%20web", http.StatusBadRequest, `id: "deployment web" is not "job NAME"`)
	e.wantError(t, "/applications/shop/jobs/main/_/job%20ok", http.StatusBadRequest, "location: required")

	req, _ := http.NewRequest(http.MethodDelete, e.url+"/applications/shop/jobs/main/prod/job%20ok", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("DELETE job: %d, want 501", resp.StatusCode)
	}
}
