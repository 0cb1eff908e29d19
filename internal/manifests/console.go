package manifests

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Bounds of a Pod's console (its containers' logs) in one answer: the last
// lines of each container, at most maxConsoleBytes of them.
const (
	consoleTailLines = 2000
	maxConsoleBytes  = 1 << 20
)

// containerLog is one container's log, as Clouddriver's ContainerLog.
type containerLog struct {
	Name   string `json:"name"`
	Output string `json:"output"`
}

// getConsole answers Deck's console of a Pod (Clouddriver's
// GET /instances/{account}/{region}/{id}/console?provider=kubernetes):
// the logs of its init containers, then of its containers, each the last
// consoleTailLines lines, read through the Kubernetes API proxy on the
// client's behalf. {id} is "pod NAME" or a bare Pod name.
func (h *Handler) getConsole(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Query().Get("provider"); p != "" && p != "kubernetes" {
		httpapi.WriteError(w, http.StatusBadRequest, "provider: %q is not kubernetes, the only provider served here", p)
		return
	}
	if h.kube == nil {
		httpapi.WriteError(w, http.StatusNotImplemented, "reading a Pod's log needs the Kubernetes API proxy, which this server does not have")
		return
	}
	account, ns := r.PathValue("account"), r.PathValue("region")
	if err := checkLocation(ns); err != nil || ns == "" || ns == "_" {
		httpapi.WriteError(w, http.StatusBadRequest, "region: %q is not a namespace name (the Pod's namespace)", ns)
		return
	}
	id := r.PathValue("id")
	if !strings.Contains(id, " ") {
		id = "pod " + id
	}
	kind, name, err := fullName(id)
	switch {
	case err != nil:
		httpapi.WriteError(w, http.StatusBadRequest, "id%s", strings.TrimPrefix(err.Error(), "name"))
		return
	case !strings.EqualFold(kind, "pod"):
		httpapi.WriteError(w, http.StatusBadRequest, `id: %q is not "pod NAME"`, r.PathValue("id"))
		return
	}
	o, err := h.cache.GetObject(r.Context(), store.ObjectKey{Account: account, Kind: "Pod", Namespace: ns, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		httpapi.WriteError(w, http.StatusNotFound, "no cached Pod %q in namespace %q of account %q", name, ns, account)
		return
	}
	if err != nil {
		h.fail(w, r, "read a cached Pod", err)
		return
	}
	var pod corev1.Pod
	if err := json.Unmarshal(o.JSON, &pod); err != nil {
		h.fail(w, r, "decode a cached Pod", err)
		return
	}
	out := []containerLog{}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		lr := &logReader{}
		h.kube.KubernetesGet(r.Context(), r, account, "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods/"+url.PathEscape(name)+"/log",
			url.Values{"container": {c.Name}, "tailLines": {strconv.Itoa(consoleTailLines)}}, lr)
		if httpapi.Interrupted(w, r) {
			return
		}
		out = append(out, containerLog{Name: c.Name, Output: lr.text()})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"output": out})
}

// logReader keeps the end of a log as relayed, its last maxConsoleBytes
// (the newest lines say most), or the start of the reason it could not be
// read.
type logReader struct {
	relayed
	body []byte
	cut  int // earlier bytes left out
}

func (l *logReader) Write(b []byte) (int, error) {
	if l.keepFailed(b) {
		return len(b), nil
	}
	l.body = append(l.body, b...)
	if over := len(l.body) - maxConsoleBytes; over > 0 {
		l.cut += over
		l.body = append(l.body[:0], l.body[over:]...)
	}
	return len(b), nil
}

// text is the log, or a line saying why there is none.
func (l *logReader) text() string {
	if !l.ok() {
		return "(the log could not be read: " + strconv.Itoa(l.code) + ": " + l.reason() + ")"
	}
	body := l.body
	if l.cut > 0 {
		for len(body) > 0 && !utf8.RuneStart(body[0]) {
			body = body[1:] // from a whole character
		}
		return "(" + strconv.Itoa(l.cut+len(l.body)-len(body)) + " earlier bytes left out)\n" + string(body)
	}
	return string(body)
}
