package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/httpapi"
)

// Kubernetes reads an account's API server through the agent serving it
// (the control plane's Kubernetes API proxy), on behalf of the REST
// request from (whose client the proxy must admit), writing the answer
// to w.
type Kubernetes interface {
	KubernetesGet(ctx context.Context, from *http.Request, account, path string, query url.Values, w http.ResponseWriter)
}

// Properties a job writes to its log for the stages after it, as
// Clouddriver's PropertyParser reads them.
const (
	propertyPrefix   = "SPINNAKER_PROPERTY_"
	configJSONPrefix = "SPINNAKER_CONFIG_JSON="
	// maxLogLine bounds a log line kept while it is incomplete; a longer
	// one (which cannot be a property: kubelets split lines at 16 KiB, a
	// SPINNAKER_CONFIG_JSON object aside) is skipped.
	maxLogLine = 4 << 20
	// maxProperties bounds what the properties of one log may hold (keys
	// and values, as written): a pipeline's outputs, not a data store.
	maxProperties = 4 << 20
)

// propertyReader is the http.ResponseWriter a Pod's log is relayed to: it
// parses the properties line by line as the log comes, keeping only them
// (a log may be far larger than what it declares), or, for a failed
// answer, the start of its body.
type propertyReader struct {
	relayed
	line  []byte
	long  bool // the current line went over maxLogLine: skipped
	props map[string]any
	size  int   // bytes of the property lines taken
	err   error // a SPINNAKER_CONFIG_JSON line that is not a JSON object, or too much
}

func newPropertyReader() *propertyReader {
	return &propertyReader{props: map[string]any{}}
}

func (p *propertyReader) Write(b []byte) (int, error) {
	if p.keepFailed(b) {
		return len(b), nil
	}
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.add(b)
			break
		}
		p.add(b[:i])
		p.endLine()
		b = b[i+1:]
	}
	return n, nil
}

func (p *propertyReader) add(b []byte) {
	if p.long || len(p.line)+len(b) > maxLogLine {
		p.long, p.line = true, p.line[:0]
		return
	}
	p.line = append(p.line, b...)
}

// endLine parses the line complete: "...SPINNAKER_PROPERTY_NAME=value"
// (anywhere in the line; the name lower-cased, an empty value skipped) or
// "SPINNAKER_CONFIG_JSON={...}" (merged in). Unlike Clouddriver, what comes
// before SPINNAKER_PROPERTY_ (a timestamp a logger adds) is not part of
// the name.
func (p *propertyReader) endLine() {
	line := strings.TrimSpace(string(p.line))
	p.line, p.long = p.line[:0], false
	if p.err != nil {
		return
	}
	if strings.HasPrefix(line, configJSONPrefix) || strings.Contains(line, propertyPrefix) {
		if p.size += len(line); p.size > maxProperties {
			p.err = fmt.Errorf("its properties hold over %d bytes", maxProperties)
			clear(p.props)
			return
		}
	}
	switch {
	case strings.HasPrefix(line, configJSONPrefix):
		var obj map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, configJSONPrefix)), &obj); err != nil || obj == nil {
			p.err = fmt.Errorf("%s line is not a JSON object: %v", strings.TrimSuffix(configJSONPrefix, "="), err)
			return
		}
		maps.Copy(p.props, obj)
	case strings.Contains(line, propertyPrefix):
		i := strings.Index(line, propertyPrefix)
		key, value, ok := strings.Cut(line[i+len(propertyPrefix):], "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if ok && value != "" && key != "" {
			p.props[strings.ToLower(key)] = value
		}
	}
}

// result is the properties, once the log is complete, or why there are
// none to give.
func (p *propertyReader) result() (map[string]any, error) {
	if !p.ok() {
		return nil, &logError{code: p.code, msg: p.reason()}
	}
	if len(p.line) > 0 {
		p.endLine()
	}
	if p.err != nil {
		return nil, p.err
	}
	return p.props, nil
}

// logError is a log read the API server or the proxy refused.
type logError struct {
	code int
	msg  string
}

func (e *logError) Error() string { return fmt.Sprintf("%d: %s", e.code, e.msg) }

// statusOf is the code a failed property read answers.
func statusOf(err error) int {
	var le *logError
	switch {
	case errors.As(err, &le) && (le.code == http.StatusNotFound || le.code == http.StatusBadRequest || le.code == http.StatusForbidden):
		return le.code // no such Pod or container; a client the proxy refuses
	case errors.As(err, &le):
		return http.StatusBadGateway
	}
	return http.StatusUnprocessableEntity // the log's properties do not parse
}

// getJobProperties answers the properties a Job's Pod wrote to the log of
// container {file} (Clouddriver's property file): of its latest Pod that
// succeeded, else of its latest Pod.
func (h *Handler) getJobProperties(w http.ResponseWriter, r *http.Request) {
	j, ok := h.cachedJob(w, r)
	if !ok {
		return
	}
	pods, err := h.jobPods(r, r.PathValue("account"), j)
	if err != nil {
		h.fail(w, r, "list a Job's cached Pods", err)
		return
	}
	if len(pods) == 0 {
		httpapi.WriteError(w, http.StatusNotFound, "job %q in namespace %q of account %q has no cached Pods", j.Name, j.Namespace, r.PathValue("account"))
		return
	}
	pod := pods[len(pods)-1]
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded {
			pod = p
		}
	}
	h.properties(w, r, j.Namespace, pod.Name)
}

// getPodProperties answers the properties Pod {pod} wrote to the log of
// container {file}.
func (h *Handler) getPodProperties(w http.ResponseWriter, r *http.Request) {
	switch ns := r.PathValue("namespace"); {
	case ns == "_":
		httpapi.WriteError(w, http.StatusBadRequest, "namespace: required (Pods are namespaced)")
		return
	case checkLocation(ns) != nil:
		httpapi.WriteError(w, http.StatusBadRequest, "namespace%s", strings.TrimPrefix(checkLocation(ns).Error(), "location"))
		return
	}
	h.properties(w, r, r.PathValue("namespace"), r.PathValue("pod"))
}

// properties reads the log of container {file} of Pod pod through the
// agent and answers the properties in it.
func (h *Handler) properties(w http.ResponseWriter, r *http.Request, ns, pod string) {
	if h.kube == nil {
		httpapi.WriteError(w, http.StatusNotImplemented, "reading a Pod's log needs the Kubernetes API proxy, which this server does not have")
		return
	}
	account, container := r.PathValue("account"), r.PathValue("file")
	pr := newPropertyReader()
	h.kube.KubernetesGet(r.Context(), r, account, "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods/"+url.PathEscape(pod)+"/log",
		url.Values{"container": {container}}, pr)
	if httpapi.Interrupted(w, r) {
		return
	}
	props, err := pr.result()
	if err != nil {
		// The proxy's own refusals name the settings that turn it on.
		httpapi.WriteError(w, statusOf(err), "log of container %q of Pod %q in namespace %q of account %q: %v", container, pod, ns, account, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, props)
}
